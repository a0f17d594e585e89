"""A store used for one block (the demo's loop, the benchmarks) leaves MLflow as it found it: MLflow keeps its
URIs in process-wide globals that `configure` sets and exports, and a later client in the same process once
kept writing to a store that was gone."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from registry.tracking import REGISTRY_ENV, TRACKING_ENV, configure, using_store


def test_a_store_used_for_a_block_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = f"sqlite:///{tmp_path / 'outer.db'}"
    monkeypatch.setenv(TRACKING_ENV, outer)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    inner = f"sqlite:///{tmp_path / 'inner.db'}"
    with using_store(inner):
        configure()  # as the benchmarks do: sets MLflow's globals and exports them
        assert mlflow.get_tracking_uri() == inner and mlflow.get_registry_uri() == inner
        assert os.environ[TRACKING_ENV] == inner
    assert mlflow.get_tracking_uri() == outer and mlflow.get_registry_uri() == outer
    assert os.environ[TRACKING_ENV] == outer and REGISTRY_ENV not in os.environ
    assert MlflowClient()._registry_uri == outer  # what a new client writes to
