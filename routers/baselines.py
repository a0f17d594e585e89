"""Baseline routers: always the cheapest, always the strongest, random, a fixed model, and the oracle.

Their predictions are built so the shared decision rule makes their choice at every λ; the oracle needs
the true outcomes of the prompts it routes, so it is for evaluation only.
"""

from __future__ import annotations

import hashlib

import numpy as np
from pydantic import BaseModel, ConfigDict

from routers.base import Features, NoParams, Router, RouterError
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet


class CheapestRouter(Router[NoParams]):
    """Equal quality for every candidate, the mean observed cost: the cheapest candidate always wins."""

    family = "cheapest"
    source = "baseline"

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        self.cost_ = mean_costs(train)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        return np.zeros((rows, len(self.models_))), broadcast(self.cost_, rows)


class StrongestRouter(Router[NoParams]):
    """Quality 1 for the model with the best mean training quality, 0 otherwise, and no cost: it always wins."""

    family = "strongest"
    source = "baseline"

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        quality = mean_qualities(train)
        self.quality_ = (np.arange(len(quality)) == int(np.argmax(quality))).astype(np.float64)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        return broadcast(self.quality_, rows), np.zeros((rows, len(self.models_)))


class FixedParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = ""
    """The model always chosen; empty means the first model in training order."""


class FixedRouter(Router[FixedParams]):
    """Always the configured model."""

    family = "fixed"
    source = "baseline"
    Params = FixedParams

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        name = self.params.model or train.models[0]
        if name not in train.models:
            raise RouterError(f"fixed model {name!r} is not among the training models {list(train.models)}")
        self.quality_ = (np.asarray(train.models) == name).astype(np.float64)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        return broadcast(self.quality_, rows), np.zeros((rows, len(self.models_)))


class RandomRouter(Router[NoParams]):
    """A uniform random candidate per prompt, fixed by the prompt's features and the seed (repeatable)."""

    family = "random"
    source = "baseline"

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        self.cost_ = mean_costs(train)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        quality = np.stack([self._draw(np.asarray(row)) for row in features]) if len(features) else np.zeros((0, 0))
        return quality.reshape(len(features), len(self.models_)), np.zeros((len(features), len(self.models_)))

    def _draw(self, row: np.ndarray) -> FloatMatrix:
        digest = hashlib.sha256(str(self.seed).encode() + np.ascontiguousarray(row).tobytes()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "big")).random(len(self.models_))


class OracleRouter(Router[NoParams]):
    """Memorises the true outcomes of the prompts it is fitted on and predicts exactly those (evaluation only)."""

    family = "oracle"
    source = "baseline"

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.keys_ = np.asarray([np.frombuffer(_row_key(row), dtype=np.uint8) for row in train.features])
        self.quality_ = np.nan_to_num(train.quality, nan=0.0)
        fallback = mean_costs(train)
        self.cost_ = np.where(np.isnan(train.cost), fallback, train.cost)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        index = {key.tobytes(): i for i, key in enumerate(self.keys_)}
        rows = [index.get(_row_key(row)) for row in features]
        if any(r is None for r in rows):
            raise RouterError("the oracle only routes prompts it was fitted on; fit it on the evaluation prompts")
        picked = np.asarray(rows, dtype=np.intp)
        return self.quality_[picked], self.cost_[picked]


def _row_key(row: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(row).tobytes()).digest()
