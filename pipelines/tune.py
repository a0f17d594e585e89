"""DVC stage `tune@<family>`: one Optuna study of one family on the loop's outcome table (trials as nested
MLflow runs), the best configuration refit and scored — full-information metrics where every model's outcome
is known, off-policy estimates on logged traffic — and saved as an artifact for `evaluate` and `register`.

`python -m pipelines.tune <family>`; writes `<routers>/<family>/{router_artifact/, metrics.json, run.json}`.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna

from pipelines.featurize import features_for, parts
from pipelines.loop_params import LoopParams, loop_params, read_section
from pipelines.outcomes import read_outcomes
from pipelines.provenance import file_hash
from pipelines.study import Progress, fit_and_score, run_study
from pipelines.train import Splits, split_sets
from registry import names, tracking
from routers import artifact
from routers.registry import family_class
from routers.scoring import metrics_for

METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"
STUDY_STORAGE = "sqlite:///runs/optuna.db"
"""Default `tune.storage`: Optuna's study store; any RDB URL (PostgreSQL for a shared store) works."""


@dataclass(frozen=True)
class TuneParams:
    """`tune.seed` and `tune.<family>.trials` of params.yaml."""

    seed: int
    trials: int
    custom_path: str | None
    storage: str = STUDY_STORAGE


def tune_params(family: str) -> TuneParams:
    section = read_section(section="tune")
    own = section.get(family) or {}
    return TuneParams(
        seed=int(section.get("seed", 0)),
        trials=int(own.get("trials", 5)),
        custom_path=own.get("path"),
        storage=str(section.get("storage", STUDY_STORAGE)),
    )


def tune_family(family: str, loop: LoopParams, tune: TuneParams, progress: Progress) -> dict[str, Any]:
    """Study, refit, score, save; returns what `metrics.json` holds."""
    cls = family_class(family, tune.custom_path)
    raw = split_sets(read_outcomes(loop.outcomes), loop.max_propensity_weight)
    stored = features_for(loop.features, cls.features, raw)
    data = Splits(*(p.with_features(stored.matrices[n]) for n, p in parts(raw).items()))
    data_hash = file_hash(loop.outcomes)
    with mlflow.start_run(run_name=f"tune-{family}") as run:
        mlflow.set_tag(names.TAG_KIND, names.KIND_FAMILY)
        study = run_study(
            cls,
            data.train,
            data.valid,
            trials=tune.trials,
            seed=tune.seed,
            storage=tune.storage,
            study_name=f"{family}-{data_hash[:12]}",
            progress=progress,
            cost_weight=loop.cost_weight,
        )
        router, metrics = fit_and_score(
            cls, study.params, data.train, data.valid, tune.seed, cost_weight=loop.cost_weight
        )
        assert data.test.features is not None
        metrics |= metrics_for(router.predict(data.test.features), data.test, "test", loop.cost_weight)
        mlflow.log_metrics(metrics)
    target = loop.routers / family
    shutil.rmtree(target, ignore_errors=True)
    artifact.save(target / names.ARTIFACT_DIR, router, stored.featurizer)
    result = {
        "family": family,
        "params": study.params.model_dump(mode="json"),
        "metrics": metrics,
        "trials": study.trials,
        "pruned": study.pruned,
        "seconds": round(study.seconds, 3),
        "data_hash": data_hash,
        "feature_spec": stored.featurizer.spec.key(),
        "candidates": list(router.models_),
    }
    (target / METRICS_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (target / RUN_FILE).write_text(json.dumps({"run_id": run.info.run_id}) + "\n")
    return result


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m pipelines.tune <family>")
    family = sys.argv[1]
    tracking.configure()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Path("runs").mkdir(exist_ok=True)
    result = tune_family(family, loop_params(), tune_params(family), lambda line: print(line, file=sys.stderr))  # noqa: T201
    metrics = result["metrics"]
    print(f"{family}: valid AIQ {metrics['valid_aiq']:.4f}, test AIQ {metrics['test_aiq']:.4f}", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
