"""The SVM family on hand-made data: learns a feature-dependent winner, falls back on thin models."""

from __future__ import annotations

import numpy as np
import optuna

from routers.cost_model import mean_qualities
from routers.dataset import TrainingSet
from routers.svm import SvmParams, SvmRouter


def _two_groups() -> TrainingSet:
    """Near (1, 0) only "a" answers well, near (0, 1) only "b"; "thin" has three known outcomes."""
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], 20)
    features = (np.eye(2)[group] + 0.1 * rng.standard_normal((40, 2))).astype(np.float32)
    quality = np.column_stack([group == 0, group == 1, np.full(40, np.nan)]).astype(np.float64)
    quality[:3, 2] = [1.0, 0.0, 1.0]
    return TrainingSet(
        prompt_ids=tuple(map(str, range(40))),
        prompts=("",) * 40,
        models=("a", "b", "thin"),
        quality=quality,
        cost=np.where(np.isnan(quality), np.nan, 0.01),
        weight=np.where(np.isnan(quality), 0.0, 1.0),
        features=features,
    )


def test_learns_which_model_wins_where_and_falls_back_to_the_mean_for_thin_models() -> None:
    train = _two_groups()
    router = SvmRouter(SvmParams(c=1.0, gamma_scale=1.0)).fit(train)
    quality, _ = router.predict(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    assert quality[0, 0] > 0.8 and quality[0, 1] < 0.2
    assert quality[1, 1] > 0.8 and quality[1, 0] < 0.2
    np.testing.assert_allclose(quality[:, 2], mean_qualities(train)[2], atol=1e-9)
    assert router.offsets_[3] == router.offsets_[2]  # no support vectors for "thin"


def test_state_round_trip_is_exact_and_search_space() -> None:
    router = SvmRouter().fit(_two_groups())
    again = SvmRouter()
    again.models_ = router.models_
    again.set_state(router.get_state())
    probe = np.random.default_rng(1).standard_normal((9, 2)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(probe).quality, router.predict(probe).quality)
    assert ((router.predict(probe).quality >= 0) & (router.predict(probe).quality <= 1)).all()
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert isinstance(SvmRouter.search_space(trial), SvmParams)
