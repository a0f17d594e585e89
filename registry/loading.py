"""Load a routing model from a registry reference or a local artifact directory, verified before use."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from registry import names
from routers.artifact import LoadedRouter, load
from routers.signing import Verifier


def artifact_dir(local: Path) -> Path:
    """The router artifact inside a downloaded pyfunc model, or `local` itself when it is one."""
    nested = local / "artifacts" / names.ARTIFACT_DIR
    return nested if nested.is_dir() else local


def load_reference(
    reference: str,
    verifier: Verifier | None = None,
    require_signature: bool = False,
    allowed_custom: Collection[str] | None = None,
) -> LoadedRouter:
    """`models:/routeiq-router/3`, `models:/routeiq-router@production`, `models:/routeiq-router/Production`,
    any MLflow artifact URI, or a local directory. `allowed_custom` as in `routers.artifact.load`."""
    local = Path(reference)
    if not local.is_dir():
        import mlflow

        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=reference))
    return load(artifact_dir(local), verifier, require_signature, allowed_custom)
