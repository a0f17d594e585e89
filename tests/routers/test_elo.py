"""The Elo family on hand-made outcomes: pairwise wins, Bradley–Terry strengths, and the logged fallback."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from routers.cost_model import mean_qualities
from routers.dataset import TrainingSet
from routers.elo import EloParams, EloRouter, pairwise_wins

NAN = np.nan


def _outcomes(quality: list[list[float]], weight: float = 1.0) -> TrainingSet:
    q = np.array(quality, dtype=np.float64)
    n, m = q.shape
    return TrainingSet(
        prompt_ids=tuple(map(str, range(n))),
        prompts=("",) * n,
        models=tuple("abc"[:m]),
        quality=q,
        cost=np.where(np.isnan(q), NAN, 0.01),
        weight=np.where(np.isnan(q), 0.0, weight),
        features=np.zeros((n, 1), dtype=np.float32),
    )


def test_pairwise_wins_count_known_different_outcomes_only() -> None:
    train = _outcomes([[1, 0, 1], [0, 1, NAN], [1, 1, 0]])
    # Prompt 1: a>b, c>b. Prompt 2: b>a (c unknown). Prompt 3: a>c, b>c (a, b tie).
    np.testing.assert_array_equal(pairwise_wins(train), [[0, 1, 1], [1, 0, 1], [0, 1, 0]])


def test_strengths_follow_the_win_ratio_when_the_prior_is_weak() -> None:
    train = _outcomes([[1, 0]] * 3 + [[0, 1]])
    router = EloRouter(EloParams(prior=1e-6, iterations=2000)).fit(train)
    assert np.exp(router.rating_[0] - router.rating_[1]) == pytest.approx(3.0, rel=1e-3)
    quality, _ = router.predict(np.zeros((5, 1), dtype=np.float32))
    assert (quality == quality[0]).all() and quality[0, 0] > quality[0, 1]


def test_logged_traffic_without_pairs_falls_back_to_the_mean_quality() -> None:
    train = _outcomes([[1, NAN, NAN], [NAN, 0, NAN], [NAN, NAN, 1], [0, NAN, NAN]], weight=3.0)
    router = EloRouter().fit(train)
    np.testing.assert_array_equal(router.rating_, np.zeros(3))
    np.testing.assert_array_equal(router.predict(np.zeros((2, 1), dtype=np.float32)).quality[0], mean_qualities(train))


def test_search_space() -> None:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert isinstance(EloRouter.search_space(trial), EloParams)
