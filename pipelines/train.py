"""`routeiq train`: per family an Optuna study, the best configuration refit, scored, saved and registered.

Reads an outcome table; writes MLflow runs, model versions and an Optuna sqlite study store under runs/.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pyarrow as pa
import pyarrow.compute as pc
import yaml  # type: ignore[import-untyped]

from features import schema
from features.base import Featurizer
from features.registry import build
from pipelines.outcomes import read_outcomes
from pipelines.provenance import file_hash, git_commit
from pipelines.study import Progress, fit_and_score, run_study
from registry import names, tracking
from registry.register import log_and_register, version_tags
from routers import artifact
from routers.dataset import MAX_PROPENSITY_WEIGHT, TrainingSet, training_set
from routers.registry import EVALUATION_ONLY, FAMILIES, family_class
from routers.scoring import metrics_for

DEFAULT_STORAGE = "sqlite:///runs/optuna.db"


@dataclass(frozen=True)
class Splits:
    train: TrainingSet
    valid: TrainingSet
    test: TrainingSet


@dataclass
class FamilyResult:
    family: str
    version: str
    params: dict[str, Any]
    metrics: dict[str, float]
    trials: int
    seconds: float


@dataclass
class Featurized:
    """Featurizers fitted on the training prompts and the featurized splits, one per featurizer name."""

    raw: Splits
    done: dict[str, tuple[Featurizer, Splits]] = field(default_factory=dict)

    def get(self, name: str, progress: Progress) -> tuple[Featurizer, Splits]:
        if name not in self.done:
            started = time.perf_counter()
            featurizer = build(name).fit(list(self.raw.train.prompts))
            parts = [p.with_features(featurizer.transform(list(p.prompts))) for p in _parts(self.raw)]
            self.done[name] = (featurizer, Splits(*parts))
            count = sum(len(p.prompts) for p in parts)
            progress(f"features {name!r}: {count} prompts in {time.perf_counter() - started:.1f} s")
        return self.done[name]


def _parts(splits: Splits) -> tuple[TrainingSet, TrainingSet, TrainingSet]:
    return splits.train, splits.valid, splits.test


def split_sets(table: pa.Table, max_weight: float = MAX_PROPENSITY_WEIGHT) -> Splits:
    """Training sets for train, valid and test over the same ordered candidate models; a logged outcome weighs
    1/propensity, capped at `max_weight`."""
    models = tuple(sorted(set(table[schema.MODEL].to_pylist())))
    parts = []
    for split in schema.SPLITS:
        part = table.filter(pc.equal(table[schema.SPLIT], split))
        if part.num_rows == 0:
            raise ValueError(f"the outcome table has no {split!r} rows; re-import it with a {split} fraction > 0")
        parts.append(training_set(part, models, max_weight))
    return Splits(*parts)


def resolve_families(requested: str) -> list[str]:
    """`all` means every registered family that can be served; otherwise a comma-separated list."""
    names_ = [f for f in FAMILIES if f not in EVALUATION_ONLY] if requested == "all" else requested.split(",")
    for name in names_:
        family_class(name)
    return names_


def tune_section(params_file: Path) -> dict[str, Any]:
    """The `tune` section of params.yaml ({} when the file or the section is missing)."""
    if not params_file.is_file():
        return {}
    return dict((yaml.safe_load(params_file.read_text()) or {}).get("tune", {}) or {})


def trials_from_params(params_file: Path, families: list[str], default: int) -> dict[str, int]:
    """Per family, `tune.<family>.trials` of params.yaml when present, else `default`."""
    section = tune_section(params_file)
    return {f: int((section.get(f) or {}).get("trials", default)) for f in families}


def custom_path(params_file: Path) -> str | None:
    """`tune.custom.path`: the dotted path of the user's router class for the `custom` family."""
    return (tune_section(params_file).get("custom") or {}).get("path")


def train(
    outcomes: Path,
    families: list[str],
    *,
    trials: int | dict[str, int],
    seed: int,
    progress: Progress,
    storage: str = DEFAULT_STORAGE,
    custom: str | None = None,
) -> list[FamilyResult]:
    """Tune, refit, score and register each family in turn; returns what was registered."""
    tracking.configure()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress callback reports each trial
    Path("runs").mkdir(exist_ok=True)
    table = read_outcomes(outcomes)
    provenance = {"data_hash": file_hash(outcomes), "git_commit": git_commit(), "custom": custom or ""}
    cache = Featurized(split_sets(table))
    budget = {f: trials for f in families} if isinstance(trials, int) else trials
    return [
        _train_family(
            family, cache, trials=budget[family], seed=seed, storage=storage, provenance=provenance, progress=progress
        )
        for family in families
    ]


def _train_family(
    family: str,
    cache: Featurized,
    *,
    trials: int,
    seed: int,
    storage: str,
    provenance: dict[str, str],
    progress: Progress,
) -> FamilyResult:
    cls = family_class(family, provenance["custom"] or None)
    featurizer, data = cache.get(cls.features, progress)
    with mlflow.start_run(run_name=f"tune-{family}"):
        mlflow.set_tag(names.TAG_KIND, names.KIND_FAMILY)
        study = run_study(
            cls,
            data.train,
            data.valid,
            trials=trials,
            seed=seed,
            storage=storage,
            study_name=f"{family}-{provenance['data_hash'][:12]}",
            progress=progress,
        )
        router, metrics = fit_and_score(cls, study.params, data.train, data.valid, seed)
        assert data.test.features is not None
        metrics |= metrics_for(router.predict(data.test.features), data.test, "test")
        params = study.params.model_dump(mode="json")
        mlflow.log_params({f"best.{k}": v for k, v in params.items()})
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            # MLflow keeps the directory's own name as the artifact key the loaders look for.
            saved = Path(tmp) / names.ARTIFACT_DIR
            artifact.save(saved, router, featurizer)
            tags = version_tags(
                family,
                feature_spec=featurizer.spec.key(),
                candidates=list(router.models_),
                data_hash=provenance["data_hash"],
                params=params,
                git_commit=provenance["git_commit"],
                metrics=metrics,
            )
            version = log_and_register(saved, tags)
    progress(
        f"{family}: registered {names.REGISTERED_MODEL} v{version.version} "
        f"(valid AIQ {metrics['valid_aiq']:.4f}, test AIQ {metrics['test_aiq']:.4f}, {study.seconds:.0f} s)"
    )
    return FamilyResult(family, str(version.version), params, metrics, study.trials, study.seconds)
