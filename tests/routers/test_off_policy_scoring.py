"""Scoring routers on logged traffic: which rows count as bandit feedback, and whether the doubly-robust
estimate of a real router's quality on uniformly logged RouterBench rows matches its true full-information value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from features import schema
from features.registry import build
from pipelines.outcomes import first_prompts, import_source
from routers.dataset import TrainingSet, training_set
from routers.decision import choose
from routers.registry import family_class
from routers.scoring import metrics_for

COST_WEIGHT = 100.0


@pytest.fixture(scope="module")
def tables(data_dir: Path) -> tuple[pa.Table, pa.Table]:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    return first_prompts(table, {schema.TRAIN: 300}), first_prompts(table, {schema.TEST: 600})


def _logged(full: pa.Table, seed: int) -> pa.Table:
    """One uniformly drawn model per prompt, with propensity 1/K: what the gateway's fallback logs."""
    rows = [r for r in full.to_pylist() if r[schema.QUALITY] is not None]
    by_prompt: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for row in rows:
        by_prompt.setdefault(row[schema.PROMPT_ID], []).append(row)
    rng = np.random.default_rng(seed)
    models = sorted({r[schema.MODEL] for r in rows})
    picked = []
    for options in by_prompt.values():
        row = options[int(rng.integers(len(options)))]
        picked.append({**row, schema.PROPENSITY: 1.0 / len(models)})
    return pa.Table.from_pylist(picked, schema=full.schema)


def test_public_data_with_a_few_unknown_outcomes_is_not_bandit_feedback(tables: tuple[pa.Table, pa.Table]) -> None:
    full = training_set(tables[1])
    assert (~full.known).any(), "the slice should hold some unknown outcomes"
    assert full.events.size == 0
    assert training_set(_logged(tables[1], 0), full.models).events.size > 0


def test_the_dr_estimate_on_a_uniform_log_matches_the_true_value(tables: tuple[pa.Table, pa.Table]) -> None:
    train = training_set(tables[0])
    featurizer = build("fast").fit(list(train.prompts))
    router = family_class("knn")(seed=0).fit(train.with_features(featurizer.transform(list(train.prompts))))
    full = training_set(tables[1], train.models)
    logged: TrainingSet = training_set(_logged(tables[1], 1), train.models)
    prediction = router.predict(featurizer.transform(list(logged.prompts)))
    metrics = metrics_for(prediction, logged, "test", COST_WEIGHT)
    assert metrics["test_aiq"] == metrics["test_ope_aiq"]
    # The truth: the same decisions scored on every model's recorded outcome of the same prompts.
    index = {p: i for i, p in enumerate(full.prompt_ids)}
    rows = np.array([index[p] for p in logged.prompt_ids])
    chosen = choose(prediction.quality, prediction.cost, COST_WEIGHT)
    truth = np.nanmean(full.quality[rows, chosen])
    assert metrics["test_dr_quality_low"] <= truth <= metrics["test_dr_quality_high"]
    assert abs(metrics["test_dr_quality"] - truth) < 0.08
    assert metrics["test_logging_quality"] == pytest.approx(np.nanmean(logged.quality))
