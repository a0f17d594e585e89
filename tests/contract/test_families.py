"""Every registered router family honours the interface: fit, shapes, save/load, determinism, no pickle,
and learning from logged traffic (one model per prompt, with its propensity) alone."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from routers import artifact
from routers.base import Router
from routers.dataset import TrainingSet
from routers.decision import choose
from routers.registry import EVALUATION_ONLY, FAMILIES, family_class

from .conftest import Slice, featurize

BASELINES = {"cheapest", "random", "fixed", "oracle"}
"""Families that do not learn which model is better, so the learning checks do not apply."""


def _fitted(name: str, raw_slice: Slice, featurized: dict, seed: int = 0) -> tuple[Router, object, Slice]:  # type: ignore[type-arg]
    cls = family_class(name)
    featurizer, data = featurize(cls.features, raw_slice, featurized)
    router = cls(cls.Params(), seed=seed).fit(data.train, data.valid)
    return router, featurizer, data


@pytest.fixture(scope="module")
def fitted_cache() -> dict[str, tuple[Router, object, Slice]]:
    return {}


def _get(name: str, raw_slice: Slice, featurized: dict, cache: dict) -> tuple[Router, object, Slice]:  # type: ignore[type-arg]
    if name not in cache:
        cache[name] = _fitted(name, raw_slice, featurized)
    return cache[name]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_fit_and_predict_shapes(name: str, raw_slice: Slice, featurized: dict, fitted_cache: dict) -> None:  # type: ignore[type-arg]
    router, _, data = _get(name, raw_slice, featurized, fitted_cache)
    assert router.models_ == data.train.models
    test = data.valid if name in EVALUATION_ONLY else data.test
    if name in EVALUATION_ONLY:
        router = family_class(name)(seed=0).fit(test)
    full = router.predict(test.features)
    assert full.quality.shape == full.cost.shape == (len(test.prompt_ids), len(data.train.models))
    assert np.isfinite(full.quality).all() and np.isfinite(full.cost).all()
    assert (full.cost >= 0).all()
    pair = [data.train.models[3], data.train.models[0]]
    two = router.predict(test.features, pair)
    assert two.quality.shape == (len(test.prompt_ids), 2)
    np.testing.assert_array_equal(two.quality, full.quality[:, [3, 0]])
    np.testing.assert_array_equal(two.cost, full.cost[:, [3, 0]])


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_save_load_round_trip_is_exact_and_never_unpickles(
    name: str,
    raw_slice: Slice,
    featurized: dict,
    fitted_cache: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    router, featurizer, data = _get(name, raw_slice, featurized, fitted_cache)
    if name in EVALUATION_ONLY:
        router = family_class(name)(seed=0).fit(data.test)
    artifact.save(tmp_path / "a", router, featurizer)  # type: ignore[arg-type]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an artifact load must never unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = artifact.load(tmp_path / "a")
    monkeypatch.undo()
    assert not list((tmp_path / "a").glob("*.pkl"))
    prompts = list(data.test.prompts)
    features_again = loaded.featurizer.transform(prompts)
    before = router.predict(featurizer.transform(prompts))  # type: ignore[attr-defined]
    after = loaded.router.predict(features_again)
    np.testing.assert_array_equal(before.quality, after.quality)
    np.testing.assert_array_equal(before.cost, after.cost)
    assert loaded.meta["family"] == name and tuple(loaded.meta["models"]) == data.train.models


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_same_seed_same_predictions(name: str, raw_slice: Slice, featurized: dict, fitted_cache: dict) -> None:  # type: ignore[type-arg]
    if name in EVALUATION_ONLY:
        pytest.skip("the oracle memorises outcomes; nothing random to repeat")
    first, _, data = _get(name, raw_slice, featurized, fitted_cache)
    second, _, _ = _fitted(name, raw_slice, featurized, seed=0)
    a, b = first.predict(data.test.features), second.predict(data.test.features)
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_array_equal(a.cost, b.cost)


def _logged(train: TrainingSet, seed: int = 0) -> TrainingSet:
    """Bandit feedback: one uniformly drawn model per prompt, propensity 1/m (weight m), the rest unknown."""
    rng = np.random.default_rng(seed)
    n, m = train.quality.shape
    pick = rng.integers(0, m, size=n)
    mask = np.zeros((n, m), dtype=bool)
    mask[np.arange(n), pick] = True
    mask &= ~np.isnan(train.quality)
    return TrainingSet(
        prompt_ids=train.prompt_ids,
        prompts=train.prompts,
        models=train.models,
        quality=np.where(mask, train.quality, np.nan),
        cost=np.where(mask, train.cost, np.nan),
        weight=np.where(mask, float(m), 0.0),
        responses=train.responses,
        features=train.features,
    )


def _routed_quality(router: Router, test: TrainingSet) -> float:
    prediction = router.predict(test.features)
    chosen = choose(prediction.quality, prediction.cost, 0.0)
    return float(np.nanmean(test.quality[np.arange(len(chosen)), chosen]))


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - BASELINES))
def test_learns_from_logged_traffic_alone(name: str, raw_slice: Slice, featurized: dict) -> None:  # type: ignore[type-arg]
    cls = family_class(name)
    _, data = featurize(cls.features, raw_slice, featurized)
    logged = _logged(data.train)
    assert (~np.isnan(logged.quality)).sum(axis=1).max() == 1
    router = cls(cls.Params(), seed=0).fit(logged, data.valid)
    # Routing for quality alone (λ = 0) must beat a uniformly random choice of model by a clear margin.
    random_choice = float(np.nanmean(data.test.quality))
    assert _routed_quality(router, data.test) > random_choice + 0.05
