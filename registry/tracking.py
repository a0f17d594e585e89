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

    configured = os.environ.get(TRACKING_ENV)
    if configured:
        uri, location = configured, None
    else:
        DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
        uri, location = f"sqlite:///{DEFAULT_STORE.resolve()}", DEFAULT_ARTIFACTS.resolve().as_uri()
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, so child processes use the same store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)
