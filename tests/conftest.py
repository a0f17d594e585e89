"""Shared fixtures: where the real routing data lives, and the offline switches every test relies on."""

from __future__ import annotations

import os
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
