"""DVC stage `register`: each tuned family's artifact logged (in its tuning run) as an MLflow pyfunc and
registered as a version of `routeiq-router` with its provenance and metrics as tags. Never promotes.

`python -m pipelines.register`; writes `registered.json` {family: version} for the promotion step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mlflow

from pipelines.loop_params import LoopParams, loop_params
from pipelines.provenance import git_commit
from pipelines.tune import METRICS_FILE, RUN_FILE
from registry import names, tracking
from registry.register import log_and_register, version_tags
from routers.registry import EVALUATION_ONLY


def register(params: LoopParams, commit: str) -> dict[str, Any]:
    registered: dict[str, Any] = {}
    for family in params.families:
        if family in EVALUATION_ONLY:
            continue
        directory = params.routers / family
        result = json.loads((directory / METRICS_FILE).read_text())
        run_id = json.loads((directory / RUN_FILE).read_text())["run_id"]
        tags = version_tags(
            family,
            feature_spec=result["feature_spec"],
            candidates=result["candidates"],
            data_hash=result["data_hash"],
            params=result["params"],
            git_commit=commit,
            metrics=result["metrics"],
        )
        with mlflow.start_run(run_id=run_id):
            version = log_and_register(directory / names.ARTIFACT_DIR, tags)
        registered[family] = int(version.version)
    return registered


def main() -> None:
    tracking.configure()
    params = loop_params()
    # The commit of the code that trained the routers (a loop workspace links to it; it is not a repo itself).
    registered = register(params, git_commit(Path(__file__).resolve().parents[1]))
    evaluation = json.loads(params.evaluation.read_text()) if params.evaluation.is_file() else {}
    best = evaluation.get("best")
    summary = {"versions": registered, "best": best, "best_version": registered.get(best) if best else None}
    params.registered.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    for family, version in registered.items():
        print(f"{family}: {names.REGISTERED_MODEL} v{version}", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
