"""Where MLflow records runs: MLFLOW_TRACKING_URI when set, else a local sqlite store under runs/.

Called from entry points only; importing this module configures nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE = Path("runs") / "mlflow.db"
DEFAULT_ARTIFACTS = Path("runs") / "mlartifacts"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
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
