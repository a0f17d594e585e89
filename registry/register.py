"""Log a trained router artifact as an MLflow pyfunc (model from code, no pickle) and register a version.

Runs inside an active MLflow run; it never trains or evaluates.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from registry import names
from registry.pyfunc import PROMPT_COLUMN

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
INPUT_EXAMPLE = "Which planet is closest to the sun?\nA) Venus\nB) Mercury\nC) Mars\nD) Earth\nAnswer:"


def version_tags(
    family: str,
    *,
    feature_spec: str,
    candidates: list[str],
    data_hash: str,
    params: Mapping[str, Any],
    git_commit: str,
    metrics: Mapping[str, float],
) -> dict[str, str]:
    """The tags every registered version carries (names in registry/names.py)."""
    tags = {
        names.TAG_FAMILY: family,
        names.TAG_FEATURE_SPEC: feature_spec,
        names.TAG_CANDIDATES: json.dumps(candidates),
        names.TAG_DATA_HASH: data_hash,
        names.TAG_PARAMS: json.dumps(dict(params), sort_keys=True),
        names.TAG_GIT_COMMIT: git_commit,
    }
    tags |= {f"{names.TAG_METRIC_PREFIX}{k}": repr(float(v)) for k, v in metrics.items()}
    return tags


def _signature() -> ModelSignature:
    """Prompts in; `cost_weight` and `candidates` as inference parameters; decisions out."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", PROMPT_COLUMN)]),
        outputs=Schema([ColSpec("string", "id"), ColSpec("string", "model")]),
        params=ParamSchema(
            [ParamSpec("cost_weight", "double", 0.0), ParamSpec("candidates", "string", [""], shape=(-1,))]
        ),
    )


def log_and_register(artifact_dir: Path, tags: Mapping[str, str]) -> ModelVersion:
    """Log the artifact under the active run as a pyfunc and register it as a new version with `tags`."""
    # MLflow stores a directory under its own name, and loaders look for `artifacts/<ARTIFACT_DIR>`.
    with tempfile.TemporaryDirectory() as staging:
        source = artifact_dir
        if artifact_dir.name != names.ARTIFACT_DIR:
            source = Path(staging) / names.ARTIFACT_DIR
            shutil.copytree(artifact_dir, source)
        info = mlflow.pyfunc.log_model(
            name=names.MODEL_NAME,
            python_model=str(PYFUNC_CODE),
            artifacts={names.ARTIFACT_DIR: str(source)},
            pip_requirements=["routeiq"],
            signature=_signature(),
            input_example=pd.DataFrame({PROMPT_COLUMN: [INPUT_EXAMPLE]}),
        )
    client = MlflowClient()
    try:
        client.get_registered_model(names.REGISTERED_MODEL)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(names.REGISTERED_MODEL, description="RouteIQ routing policies")
    version = client.create_model_version(
        names.REGISTERED_MODEL, source=info.model_uri, run_id=info.run_id, tags=dict(tags)
    )
    return version
