"""The cascade family on a real RouterBench slice: the verifier ranks right recorded answers above wrong ones,
and the two-step policy (cheap answer, escalate when the verifier doubts it) beats the cheap model alone for
less than always asking the strong model. Also: the prompt-only fallback and the decision's edges."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import roc_auc_score

from features import schema
from pipelines.outcomes import import_source
from routers.base import RouterError
from routers.cascade import CascadeParams, CascadeRouter
from routers.dataset import TrainingSet, training_set

TRAIN_PROMPTS = 240
TEST_PROMPTS = 160
STRONG_CALL_WORTH = 0.15
"""The cost weight of the policy test: one strong call is worth 0.15 expected quality."""


@dataclass(frozen=True)
class Split:
    train: TrainingSet
    test: TrainingSet


def _sample(table: pa.Table, split: str, count: int) -> pa.Table:
    part = table.filter(pc.equal(table[schema.SPLIT], split))
    ids = sorted(set(part[schema.PROMPT_ID].to_pylist()))
    keep = np.random.default_rng(1).choice(ids, size=min(count, len(ids)), replace=False)
    return part.filter(pc.is_in(part[schema.PROMPT_ID], value_set=pa.array(sorted(keep.tolist()))))


@pytest.fixture(scope="module")
def real(data_dir: Path) -> Split:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    train = training_set(_sample(table, schema.TRAIN, TRAIN_PROMPTS))
    test = training_set(_sample(table, schema.TEST, TEST_PROMPTS), train.models)
    return Split(train.with_features(_texts(train)), test.with_features(_texts(test)))


@pytest.fixture(scope="module")
def router(real: Split) -> CascadeRouter:
    return CascadeRouter(seed=0).fit(real.train)


def _texts(data: TrainingSet) -> np.ndarray:
    out = np.empty(len(data.prompts), dtype=object)
    out[:] = list(data.prompts)
    return out


def _answered(data: TrainingSet, cheap: int, strong: int) -> np.ndarray:
    """Test prompts where both models' outcomes and the cheap model's answer text were recorded."""
    known = ~np.isnan(data.quality[:, cheap]) & ~np.isnan(data.quality[:, strong])
    return np.flatnonzero(known & np.array([row[cheap] is not None for row in data.responses]))


def test_verifier_scores_right_answers_above_wrong_ones_on_held_out_prompts(router: CascadeRouter, real: Split) -> None:
    cheap, strong = (int(i) for i in router.pair_)
    rows = _answered(real.test, cheap, strong)
    answers = [str(real.test.responses[i][cheap]) for i in rows]
    scores = router.verify([real.test.prompts[i] for i in rows], answers)
    right = real.test.quality[rows, cheap] >= 0.5
    assert 0 < right.sum() < len(rows)
    assert roc_auc_score(right, scores) > 0.6
    assert scores[right].mean() > scores[~right].mean()


def test_two_step_policy_beats_the_cheap_model_for_less_than_the_strong_one(router: CascadeRouter, real: Split) -> None:
    cheap, strong = (int(i) for i in router.pair_)
    assert router.first_model() == real.train.models[cheap] != real.train.models[strong]
    rows = _answered(real.test, cheap, strong)
    cost_weight = STRONG_CALL_WORTH / float(router.cost_[strong])
    escalated = np.array(
        [
            router.escalate(real.test.prompts[i], str(real.test.responses[i][cheap]), cost_weight) is not None
            for i in rows
        ]
    )
    quality = np.where(escalated, real.test.quality[rows, strong], real.test.quality[rows, cheap])
    cost = real.test.cost[rows, cheap] + np.where(escalated, real.test.cost[rows, strong], 0.0)
    assert 0 < escalated.mean() < 1
    assert quality.mean() > real.test.quality[rows, cheap].mean()
    assert cost.mean() < real.test.cost[rows, strong].mean()


def test_escalation_follows_the_cost_weight(router: CascadeRouter, real: Split) -> None:
    cheap, strong = (int(i) for i in router.pair_)
    rows = _answered(real.test, cheap, strong)[:40]
    prompts = [real.test.prompts[i] for i in rows]
    answers = [str(real.test.responses[i][cheap]) for i in rows]
    rates = [router.escalations(prompts, answers, weight).mean() for weight in (0.0, 20.0, 60.0, np.inf)]
    assert rates == sorted(rates, reverse=True) and rates[-1] == 0.0
    assert router.escalate(prompts[0], answers[0], np.inf) is None
    with pytest.raises(RouterError, match="cost weight"):
        router.escalate(prompts[0], answers[0], -1.0)


def test_without_answer_text_verification_falls_back_to_the_prompt(real: Split) -> None:
    train = replace(real.train, responses=())
    router = CascadeRouter(CascadeParams(hash_dims=256)).fit(train)
    assert router.verifier_coef_.size == 0
    prompts = list(real.test.prompts[:10])
    cheap = router.first_model()
    from_prompt = router.predict(_texts(real.test)[:10], [cheap]).quality[:, 0]
    np.testing.assert_allclose(router.verify(prompts, ["anything"] * 10), from_prompt, rtol=1e-12)
    assert router.escalate(prompts[0], "", 0.0) in {None, router.models_[int(router.pair_[1])]}


def test_unfitted_router_and_search_space() -> None:
    with pytest.raises(RouterError, match="not fitted"):
        CascadeRouter().first_model()
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert isinstance(CascadeRouter.search_space(trial), CascadeParams)
