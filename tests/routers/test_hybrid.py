"""The hybrid family on hand-made data: the λ rule realises a threshold on P(small as good as large),
the paired label is used when both outcomes are known, and logged traffic falls back to a factorised P."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from routers.base import RouterError
from routers.dataset import TrainingSet
from routers.decision import choose
from routers.hybrid import HybridParams, HybridRouter

MODELS = ("large", "middle", "small")
COSTS = np.array([0.01, 0.005, 0.001])


def _easy_and_hard(logged: bool = False) -> TrainingSet:
    """Near (1, 0) the small model is right, near (0, 1) it is wrong; the large one is always right."""
    rng = np.random.default_rng(0)
    hard = np.repeat([False, True], 40)
    features = (np.eye(2)[hard.astype(int)] + 0.1 * rng.standard_normal((80, 2))).astype(np.float32)
    quality = np.column_stack([np.ones(80), np.full(80, 0.5), (~hard).astype(float)])
    weight = np.ones((80, 3))
    if logged:  # one model per prompt, in turn, each with propensity 1/3
        shown = np.arange(80) % 3
        quality = np.where(np.arange(3) == shown[:, None], quality, np.nan)
        weight = np.where(np.isnan(quality), 0.0, 3.0)
    return TrainingSet(
        prompt_ids=tuple(map(str, range(80))),
        prompts=("",) * 80,
        models=MODELS,
        quality=quality,
        cost=np.where(np.isnan(quality), np.nan, COSTS),
        weight=weight,
        features=features,
    )


PROBE = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
"""An easy and a hard prompt."""


def test_cost_weight_sweeps_the_threshold_from_large_to_small() -> None:
    router = HybridRouter(HybridParams(quality_gap=0.6, l2=0.01)).fit(_easy_and_hard())
    assert router.small_large() == ("small", "large") and router.coef_.shape == (1, 2)
    quality, cost = router.predict(PROBE)
    assert quality[0, 2] > quality[1, 2] and quality[0, 0] == quality[1, 0] == 1.0
    picks = [MODELS[i] for w in (0.0, 5.0, 1e4) for i in choose(quality, cost, w)]
    # λ = 0: the large model; moderate λ: the small one only where it is likely as good; large λ: small.
    assert picks == ["large", "large", "small", "large", "small", "small"]


def test_a_threshold_below_one_sends_likely_easy_prompts_to_small_even_at_zero_cost_weight() -> None:
    router = HybridRouter(HybridParams(quality_gap=0.6, l2=0.01, threshold=0.6)).fit(_easy_and_hard())
    quality, cost = router.predict(PROBE)
    assert [MODELS[i] for i in choose(quality, cost, 0.0)] == ["small", "large"]


def test_logged_traffic_learns_each_models_success_and_still_ranks_prompts() -> None:
    router = HybridRouter(HybridParams(quality_gap=0.6, l2=0.01)).fit(_easy_and_hard(logged=True))
    assert router.coef_.shape == (2, 2)
    quality, _ = router.predict(PROBE)
    assert np.isfinite(quality).all() and quality[0, 2] > quality[1, 2]


def test_named_models_and_search_space() -> None:
    router = HybridRouter(HybridParams(small_model="middle")).fit(_easy_and_hard())
    assert router.small_large() == ("middle", "large")
    with pytest.raises(RouterError, match="not among"):
        HybridRouter(HybridParams(large_model="nope")).fit(_easy_and_hard())
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert isinstance(HybridRouter.search_space(trial), HybridParams)
