"""The learned routers the gateway benchmarks load: fitted on the RouterBench training split and saved as an
artifact directory (which `routing.reference` accepts), or registered in a throwaway MLflow store."""

from __future__ import annotations

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
