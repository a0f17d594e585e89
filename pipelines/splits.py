"""Seeded split assignment by prompt group: a prompt's split depends only on its group id and the seed.

Pure functions; no I/O. Groups, not rows, are assigned, so no prompt can land in two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.schema import TEST, TRAIN, VALID


class SplitParams(BaseModel):
    """Fractions of prompt groups per split, and the seed of the assignment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    valid_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> SplitParams:
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError("valid_fraction + test_fraction must be < 1 so some prompts are left to train on")
        return self


def unit_hash(group: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, group)."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(group: str, hints: Iterable[str], params: SplitParams) -> str:
    """The split of one prompt group.

    A source's own split is kept ("test" only when every file holding the prompt is a test file, so the
    test split never holds a prompt seen in training files); part of the training side becomes "valid".
    Without hints, the group is drawn with the configured fractions.
    """
    hint_set = set(hints)
    u = unit_hash(group, params.seed)
    if hint_set == {TEST}:
        return TEST
    if hint_set:
        return VALID if u < params.valid_fraction else TRAIN
    if u < params.test_fraction:
        return TEST
    return VALID if u < params.test_fraction + params.valid_fraction else TRAIN


def assign_splits(hints_by_group: Mapping[str, Iterable[str]], params: SplitParams) -> dict[str, str]:
    """Split per group id for every group in `hints_by_group` (its value: the source splits, maybe empty)."""
    return {group: assign_split(group, hints, params) for group, hints in hints_by_group.items()}
