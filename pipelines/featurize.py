"""DVC stage `featurize`: fit each featurizer the loop's families need on the training prompts and store the
fitted featurizer with the features of every split, so each `tune@family` stage reuses them.

`python -m pipelines.featurize`; reads the labelled outcome table, writes `<features>/<name>.safetensors`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save_file

from features.base import Featurizer
from features.registry import build, restore
from features.spec import FeatureSpec
from pipelines.loop_params import LoopParams, loop_params
from pipelines.outcomes import read_outcomes
from pipelines.train import Splits, split_sets
from routers.dataset import TrainingSet
from routers.registry import family_class

STATE_PREFIX = "state."
SPLIT_NAMES = ("train", "valid", "test")
NOT_STORED = frozenset({"text"})
"""Featurizers with nothing to fit or store: their "features" are the prompts themselves."""


@dataclass(frozen=True)
class StoredFeatures:
    """A fitted featurizer and the features of each split, rows in `split_sets` order."""

    featurizer: Featurizer
    matrices: dict[str, npt.NDArray[np.float32]]


def parts(splits: Splits) -> dict[str, TrainingSet]:
    """The splits by name, in `SPLIT_NAMES` order."""
    return dict(zip(SPLIT_NAMES, (splits.train, splits.valid, splits.test), strict=True))


def needed(families: tuple[str, ...]) -> list[str]:
    """The featurizer names the families use, in first-use order."""
    return list(dict.fromkeys(family_class(f).features for f in families))


def featurize(splits: Splits, name: str) -> StoredFeatures:
    featurizer = build(name).fit(list(splits.train.prompts))
    matrices = {n: featurizer.transform(list(p.prompts)) for n, p in parts(splits).items()}
    return StoredFeatures(featurizer, matrices)


def save_features(directory: Path, name: str, stored: StoredFeatures, splits: Splits) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {STATE_PREFIX + k: np.ascontiguousarray(v) for k, v in stored.featurizer.get_state().items()}
    arrays |= {k: np.ascontiguousarray(v) for k, v in stored.matrices.items()}
    save_file(arrays, str(directory / f"{name}.safetensors"))
    meta = {
        "spec": stored.featurizer.spec.model_dump(mode="json"),
        "prompt_ids": {n: list(p.prompt_ids) for n, p in parts(splits).items()},
    }
    (directory / f"{name}.json").write_text(json.dumps(meta))


def load_features(directory: Path, name: str, splits: Splits) -> StoredFeatures:
    """The stored features of `name`; refuses them when the outcome table changed since `featurize` ran."""
    meta = json.loads((directory / f"{name}.json").read_text())
    for split, part in parts(splits).items():
        if meta["prompt_ids"][split] != list(part.prompt_ids):
            raise ValueError(
                f"stored {name!r} features do not match the outcome table's {split} split; rerun featurize"
            )
    arrays = load_file(str(directory / f"{name}.safetensors"))
    state = {k[len(STATE_PREFIX) :]: v for k, v in arrays.items() if k.startswith(STATE_PREFIX)}
    featurizer = restore(FeatureSpec.model_validate(meta["spec"]), state)
    return StoredFeatures(featurizer, {n: arrays[n] for n in SPLIT_NAMES})


def features_for(directory: Path, name: str, splits: Splits) -> StoredFeatures:
    """Stored features, or (for featurizers that store nothing) freshly computed ones."""
    return featurize(splits, name) if name in NOT_STORED else load_features(directory, name, splits)


def run(params: LoopParams) -> list[str]:
    splits = split_sets(read_outcomes(params.outcomes))
    lines = []
    for name in needed(params.families):
        if name in NOT_STORED:
            continue
        started = time.perf_counter()
        save_features(params.features, name, featurize(splits, name), splits)
        count = sum(len(p.prompts) for p in parts(splits).values())
        lines.append(f"features {name!r}: {count} prompts in {time.perf_counter() - started:.1f} s")
    params.features.mkdir(parents=True, exist_ok=True)
    return lines


def main() -> None:
    for line in run(loop_params()):
        print(line, file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
