"""`loop.max_propensity_weight`: a logged outcome's training weight is 1/propensity capped there, and 1 turns the
weighting off; the logged events that off-policy evaluation reads keep their exact propensities either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from features import schema
from pipelines.loop_params import LoopParams, loop_params
from pipelines.train import split_sets


def _table() -> pa.Table:
    rows = []
    for i, (split, propensity) in enumerate([(schema.TRAIN, 0.02), (schema.TRAIN, 0.5), (schema.VALID, 0.25)]):
        for model in ("a", "b"):
            rows.append(
                {
                    schema.PROMPT_ID: f"p{i}",
                    schema.PROMPT: f"prompt {i}",
                    schema.TASK: "t",
                    schema.MODEL: model,
                    schema.QUALITY: 1.0,
                    schema.COST_USD: 0.001,
                    schema.SOURCE: "traces" if model == "a" else "public",
                    schema.PROPENSITY: propensity if model == "a" else None,
                    schema.SPLIT: split,
                }
            )
    rows += [{**r, schema.SPLIT: schema.TEST, schema.PROMPT_ID: "t0", schema.PROMPT: "t"} for r in rows[:2]]
    return schema.conform(pa.Table.from_pylist(rows, schema=schema.OUTCOME_SCHEMA))


@pytest.mark.parametrize(("cap", "expected"), [(20.0, [20.0, 2.0]), (5.0, [5.0, 2.0]), (1.0, [1.0, 1.0])])
def test_logged_outcomes_weigh_their_capped_inverse_propensity(cap: float, expected: list[float]) -> None:
    splits = split_sets(_table(), cap)
    a, b = splits.train.models.index("a"), splits.train.models.index("b")
    np.testing.assert_allclose(splits.train.weight[:, a], expected)
    np.testing.assert_allclose(splits.train.weight[:, b], [1.0, 1.0])  # public rows weigh 1
    np.testing.assert_allclose(splits.train.events.propensity, [0.02, 0.5])  # exact, never capped


def test_the_loop_reads_the_cap_and_refuses_one_below_1(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("loop:\n  max_propensity_weight: 5\n")
    assert loop_params(params).max_propensity_weight == 5.0
    assert LoopParams().max_propensity_weight == 1.0  # unweighted by default
    with pytest.raises(ValueError, match="max_propensity_weight"):
        LoopParams(max_propensity_weight=0.5)
