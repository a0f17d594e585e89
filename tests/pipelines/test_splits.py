"""Seeded split assignment by prompt group."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from features.schema import TEST, TRAIN, VALID
from pipelines.splits import SplitParams, assign_split, assign_splits

GROUPS = [f"prompt-{i}" for i in range(4000)]


def test_same_seed_same_splits_other_seed_other_splits() -> None:
    params = SplitParams(seed=7)
    first = assign_splits({g: [] for g in GROUPS}, params)
    again = assign_splits({g: [] for g in GROUPS}, SplitParams(seed=7))
    other = assign_splits({g: [] for g in GROUPS}, SplitParams(seed=8))
    assert first == again
    changed = sum(first[g] != other[g] for g in GROUPS)
    assert changed > len(GROUPS) * 0.3


def test_fractions_are_respected_without_hints() -> None:
    splits = assign_splits({g: [] for g in GROUPS}, SplitParams(valid_fraction=0.1, test_fraction=0.2))
    shares = {s: list(splits.values()).count(s) / len(GROUPS) for s in (TRAIN, VALID, TEST)}
    assert shares[TEST] == pytest.approx(0.2, abs=0.03)
    assert shares[VALID] == pytest.approx(0.1, abs=0.03)


def test_source_splits_are_kept_and_shared_prompts_go_to_the_training_side() -> None:
    params = SplitParams(valid_fraction=0.25)
    assert all(assign_split(g, [TEST], params) == TEST for g in GROUPS[:200])
    trained = [assign_split(g, [TRAIN], params) for g in GROUPS]
    assert set(trained) == {TRAIN, VALID}
    assert trained.count(VALID) / len(trained) == pytest.approx(0.25, abs=0.03)
    assert all(assign_split(g, [TRAIN, TEST], params) != TEST for g in GROUPS[:200])


def test_fractions_that_leave_nothing_to_train_are_refused() -> None:
    with pytest.raises(ValidationError, match="must be < 1"):
        SplitParams(valid_fraction=0.5, test_fraction=0.5)
