"""Where MLflow records runs: MLFLOW_TRACKING_URI when set, else a local sqlite store under runs/.

Called from entry points only; importing this module configures nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

DEFAULT_STORE = Path("runs") / "mlflow.db"
DEFAULT_ARTIFACTS = Path("runs") / "mlartifacts"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_ENV = "MLFLOW_REGISTRY_URI"
EXPERIMENT = "routeiq"


def configure(experiment: str = EXPERIMENT) -> str:
    """Point mlflow at the tracking store, make `experiment` the active one; return its id.

    With no MLFLOW_TRACKING_URI the store is `runs/mlflow.db` and artifacts go to `runs/mlartifacts`.
    """
    import mlflow

    uri = tracking_uri()
    location = None if os.environ.get(TRACKING_ENV) else DEFAULT_ARTIFACTS.resolve().as_uri()
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, so child processes use the same store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def tracking_uri(configured: str | None = None) -> str:
    """`configured`, else MLFLOW_TRACKING_URI, else the local sqlite store (its directory is created)."""
    uri = configured or os.environ.get(TRACKING_ENV)
    if uri:
        return uri
    DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


@contextlib.contextmanager
def using_store(uri: str) -> Iterator[str]:
    """MLflow's tracking and registry URIs → `uri` for this process (its clients) and its children (the
    environment) until the block ends; then everything as it was. MLflow keeps the URIs in process-wide
    globals that `configure` sets and exports, so restoring only the environment would leave later clients
    in this process on a store that may be gone."""
    import mlflow

    saved = {name: os.environ.get(name) for name in (TRACKING_ENV, REGISTRY_ENV)}
    os.environ[TRACKING_ENV] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield uri
    finally:
        # None unsets MLflow's own value, so it reads the (restored) environment again.
        mlflow.set_tracking_uri(saved[TRACKING_ENV])  # type: ignore[arg-type]
        mlflow.set_registry_uri(saved[REGISTRY_ENV])  # type: ignore[arg-type]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
