"""The kNN family on hand-made data: neighbours per model among observed prompts only, and shrinkage."""

from __future__ import annotations

import numpy as np
import optuna

from routers.cost_model import mean_qualities
from routers.dataset import TrainingSet
from routers.knn import KnnParams, KnnRouter


def _two_groups(observed_every: int = 1) -> TrainingSet:
    """Prompts near (1, 0, 0) only "a" answers well, prompts near (0, 1, 0) only "b"; "never" is unseen."""
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], 20)
    features = (np.eye(3)[group] + 0.05 * rng.standard_normal((40, 3))).astype(np.float32)
    quality = np.column_stack([group == 0, group == 1, np.zeros(40)]).astype(np.float64)
    quality[:, 2] = np.nan
    # Logged traffic: each prompt shows one model's outcome, alternating between "a" and "b".
    if observed_every > 1:
        quality[np.arange(40) % 2 == 0, 1] = np.nan
        quality[np.arange(40) % 2 == 1, 0] = np.nan
    weight = np.where(np.isnan(quality), 0.0, float(observed_every))
    return TrainingSet(
        prompt_ids=tuple(map(str, range(40))),
        prompts=("",) * 40,
        models=("a", "b", "never"),
        quality=quality,
        cost=np.where(np.isnan(quality), np.nan, 0.01),
        weight=weight,
        features=features,
    )


def test_neighbours_of_each_model_come_from_prompts_where_it_was_observed() -> None:
    router = KnnRouter(KnnParams(k=5, shrinkage=0.0)).fit(_two_groups(observed_every=2))
    quality, _ = router.predict(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32), ["a", "b"])
    np.testing.assert_array_equal(quality, [[1.0, 0.0], [0.0, 1.0]])


def test_shrinkage_pulls_toward_the_global_mean_and_unseen_models_get_the_overall_mean() -> None:
    train = _two_groups()
    router = KnnRouter(KnnParams(k=5, shrinkage=5.0, weighting="uniform")).fit(train)
    quality, _ = router.predict(np.array([[1.0, 0.0, 0.0]], dtype=np.float32))
    # Five neighbours of quality 1 and five pseudo-neighbours at a's mean of 0.5.
    np.testing.assert_allclose(quality[0, :2], [(5 * 1.0 + 5 * 0.5) / 10, (5 * 0.0 + 5 * 0.5) / 10])
    assert quality[0, 2] == mean_qualities(train)[2] == 0.5


def test_state_round_trip_and_search_space() -> None:
    router = KnnRouter().fit(_two_groups())
    again = KnnRouter()
    again.models_ = router.models_
    again.set_state(router.get_state())
    probe = np.random.default_rng(1).standard_normal((7, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(probe).quality, router.predict(probe).quality)
    assert router.predict(probe[:0]).quality.shape == (0, 3)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert isinstance(KnnRouter.search_space(trial), KnnParams)
