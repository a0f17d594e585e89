"""The MLP family: the numpy forward pass reproduces scikit-learn's net, and the state round-trips."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from routers.dataset import TrainingSet
from routers.mlp import MlpParams, MlpRouter
from routers.preprocessing import scaling, standardize


def _two_groups() -> TrainingSet:
    """Near (1, 0, 0) only "a" answers well, near (0, 1, 0) only "b"."""
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], 30)
    features = (np.eye(3)[group] + 0.1 * rng.standard_normal((60, 3))).astype(np.float32)
    quality = np.column_stack([group == 0, group == 1]).astype(np.float64)
    return TrainingSet(
        prompt_ids=tuple(map(str, range(60))),
        prompts=("",) * 60,
        models=("a", "b"),
        quality=quality,
        cost=np.full((60, 2), 0.01),
        weight=np.ones((60, 2)),
        features=features,
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_numpy_forward_pass_matches_scikit_learn() -> None:
    train = _two_groups()
    params = MlpParams(hidden_sizes=(16, 8), alpha=1e-3, learning_rate=1e-2, max_iter=100)
    router = MlpRouter(params, seed=3).fit(train)
    assert train.features is not None
    scaled = standardize(train.features, *scaling(train.features))
    # The router's training rows: every known (prompt, model) in row-major order, features ⊕ one-hot model.
    rows = [np.hstack([scaled[i], np.eye(2)[j]]) for i in range(60) for j in range(2)]
    net = MLPRegressor(hidden_layer_sizes=(16, 8), alpha=1e-3, learning_rate_init=1e-2, max_iter=100, random_state=3)
    with threadpool_limits(limits=1, user_api="blas"):
        net.fit(np.array(rows), train.quality.reshape(-1), sample_weight=np.ones(120))
    expected = np.clip(net.predict(np.array(rows)), 0.0, 1.0).reshape(60, 2)
    np.testing.assert_allclose(router.predict(train.features).quality, expected, rtol=0, atol=1e-12)
    routed = router.predict(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)).quality.argmax(axis=1)
    assert routed.tolist() == [0, 1]


def test_state_round_trip_is_exact_and_search_space() -> None:
    router = MlpRouter(MlpParams(hidden_sizes=(8, 4), max_iter=20)).fit(_two_groups())
    assert set(router.get_state()) >= {"layer0.weight", "layer2.bias", "mean", "scale", "cost"}
    again = MlpRouter(router.params)
    again.models_ = router.models_
    again.set_state(router.get_state())
    probe = np.random.default_rng(1).standard_normal((9, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(probe).quality, router.predict(probe).quality)
    quality = router.predict(probe).quality
    assert ((quality >= 0) & (quality <= 1)).all()
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert isinstance(MlpRouter.search_space(trial), MlpParams)
