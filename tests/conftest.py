"""Shared fixtures: where the real routing data lives, and the offline switches every test relies on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


@pytest.fixture(scope="session", autouse=True)
def _offline() -> None:
    os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real routing data, read in place: $ROUTEIQ_DATA_DIR or ../shared/routing-data beside the repo."""
    path = Path(os.environ.get("ROUTEIQ_DATA_DIR", REPO.parent / "shared" / "routing-data"))
    if not (path / "routerbench").is_dir():
        pytest.fail(f"routing data not found at {path}; set ROUTEIQ_DATA_DIR to the routing-data directory")
    return path


@pytest.fixture(scope="module")
def mlflow_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh directory as the working directory, with its own sqlite MLflow store, for one test module."""
    root = tmp_path_factory.mktemp("workspace")
    before = Path.cwd()
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(before)
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved
