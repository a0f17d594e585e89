"""A small real slice of RouterBench, featurized once per session for every featurizer a family asks for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from features import schema
from features.base import Featurizer
from features.registry import build
from pipelines.outcomes import import_source
from routers.dataset import TrainingSet, training_set

TRAIN_PROMPTS = 240
VALID_PROMPTS = 60
TEST_PROMPTS = 120


@dataclass(frozen=True)
class Slice:
    train: TrainingSet
    valid: TrainingSet
    test: TrainingSet


def _take(table, split: str, count: int):  # type: ignore[no-untyped-def]
    import pyarrow.compute as pc

    part = table.filter(pc.equal(table[schema.SPLIT], split))
    ids = sorted(set(part[schema.PROMPT_ID].to_pylist()))
    rng = np.random.default_rng(0)
    keep = set(rng.choice(ids, size=min(count, len(ids)), replace=False).tolist())
    return part.filter(pc.is_in(part[schema.PROMPT_ID], value_set=__import__("pyarrow").array(sorted(keep))))


@pytest.fixture(scope="session")
def raw_slice(data_dir: Path) -> Slice:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    train = training_set(_take(table, schema.TRAIN, TRAIN_PROMPTS))
    models = train.models
    return Slice(
        train=train,
        valid=training_set(_take(table, schema.VALID, VALID_PROMPTS), models),
        test=training_set(_take(table, schema.TEST, TEST_PROMPTS), models),
    )


@pytest.fixture(scope="session")
def featurized() -> dict[str, tuple[Featurizer, Slice]]:
    """Filled lazily by `featurize`: one fitted featurizer and featurized slice per featurizer name."""
    return {}


def featurize(name: str, raw: Slice, cache: dict[str, tuple[Featurizer, Slice]]) -> tuple[Featurizer, Slice]:
    if name not in cache:
        featurizer = build(name).fit(list(raw.train.prompts))
        cache[name] = (
            featurizer,
            Slice(
                *(
                    part.with_features(featurizer.transform(list(part.prompts)))
                    for part in (raw.train, raw.valid, raw.test)
                )
            ),
        )
    return cache[name]
