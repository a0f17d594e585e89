"""The learned routers the gateway benchmarks load: fitted on the RouterBench training split and saved as an
artifact directory (which `routing.reference` accepts), or registered and promoted in a throwaway MLflow store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from features import schema
from pipelines.outcomes import read_outcomes
from pipelines.train import Featurized, split_sets
from routers import artifact
from routers.registry import family_class

DEFAULT_OUTCOMES = Path("data/outcomes/routerbench.parquet")
"""Where `make bench` imports RouterBench (`routeiq data import routerbench`); every benchmark's default."""


@dataclass(frozen=True)
class SavedRouter:
    directory: Path
    family: str
    models: tuple[str, ...]


def fit_and_save(outcomes: Path, family: str, directory: Path) -> SavedRouter:
    """Fit `family` with its default parameters on the training split and save it to `directory`."""
    if not outcomes.is_file():
        raise FileNotFoundError(
            f"{outcomes} not found; create it with `routeiq data import routerbench <data-dir>/routerbench "
            f"--out {outcomes}` (make bench does this)"
        )
    cls = family_class(family)
    featurizer, data = Featurized(split_sets(read_outcomes(outcomes))).get(cls.features, progress=lambda _: None)
    router = cls(seed=0).fit(data.train, data.valid)
    artifact.save(directory, router, featurizer)
    return SavedRouter(directory, family, tuple(router.models_))


def test_prompts(outcomes: Path, limit: int) -> list[str]:
    """Distinct prompts of the test split, in table order."""
    table = read_outcomes(outcomes)
    test = table.filter(pa.compute.equal(table[schema.SPLIT], schema.TEST))
    return list(dict.fromkeys(test[schema.PROMPT].to_pylist()))[:limit]


@contextlib.contextmanager
def tracking_store(directory: Path) -> Iterator[None]:
    """A sqlite MLflow store under `directory` for this process and the gateway it starts; restored after."""
    import mlflow

    from registry.tracking import EXPERIMENT, configure, using_store

    with using_store(f"sqlite:///{directory / 'mlflow.db'}"):
        mlflow.create_experiment(EXPERIMENT, artifact_location=(directory / "artifacts").as_uri())
        configure()
        yield


def register(router: SavedRouter) -> int:
    """Register `router`'s artifact as a new version of routeiq-router; its version number."""
    import mlflow

    from registry.register import log_and_register, version_tags
    from routers import artifact

    spec = artifact.load(router.directory).featurizer.spec.model_dump_json()
    tags = version_tags(
        router.family,
        feature_spec=spec,
        candidates=list(router.models),
        data_hash="benchmark",
        params={},
        git_commit="benchmark",
        metrics={},
    )
    with mlflow.start_run(run_name=f"benchmark-{router.family}"):
        return int(log_and_register(router.directory, tags).version)


def promote_forced(version: int, reason: str) -> None:
    """Move Production and the `production` alias to `version`, skipping the gate (recorded with `reason`)."""
    from mlflow import MlflowClient

    from registry.promotion import promote
    from registry.versions import get_version

    client = MlflowClient()
    promote(client, get_version(client, version), force=True, reason=reason)
