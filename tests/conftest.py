"""Shared fixtures: where the real routing data lives, and the offline switches every test relies on."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parent.parent

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

SLOW_TIMEOUT_S = 1800.0
"""The hang guard of a test marked `slow` (a whole loop run in its fixture): the default 600 s is too tight
for those on a loaded 2-core machine, where one took over 600 s; it guards against hangs, it judges nothing."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


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


REDIS_URL = "redis://127.0.0.1:6379/0"
"""The Redis the shared-state tests use (running beside the suite, as in CI)."""


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone; every key under it is deleted afterwards."""
    prefix = f"routeiq-test:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    finally:
        client.close()


def start_inside_a_window(margin_seconds: float) -> None:
    """Wait for the next 60-second quota window unless `margin_seconds` are left in this one, so a window
    boundary never resets a count mid-test (the margin covers a gateway's start-up on a loaded machine)."""
    left = 60 - time.time() % 60
    if left < margin_seconds:
        time.sleep(left + 0.1)
