"""k-nearest-neighbour router: a candidate's quality is its mean outcome on the most similar training prompts.

Pure numpy over stored arrays (so predictions are exact after load); it never decides and never does I/O.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize, unit_rows

IntVector = npt.NDArray[np.intp]

BLOCK_ROWS = 512
"""Prompts scored per block, bounding the (prompts × training prompts) similarity matrix in memory."""


class KnnParams(BaseModel):
    """Neighbourhood size, pull toward the global mean, and how neighbours are weighted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=16, ge=1)
    """Neighbours per candidate, searched among the training prompts where that candidate was observed."""
    shrinkage: float = Field(default=2.0, ge=0.0)
    """Pseudo-neighbours at the candidate's global mean quality; they dominate when evidence is thin."""
    weighting: Literal["uniform", "similarity"] = "similarity"
    """`similarity` weighs each neighbour by its (non-negative) cosine similarity; `uniform` counts them."""


class KnnRouter(Router[KnnParams]):
    """Per candidate: weighted mean known quality of its k nearest observed prompts, shrunk to its mean."""

    family = "knn"
    source = (
        "RouterBench kNN predictive router (Hu et al., 2024, arXiv:2403.12031); "
        "RouteLLM similarity-weighted ranking (Ong et al., 2024)"
    )
    Params = KnnParams

    @classmethod
    def search_space(cls, trial: Any) -> KnnParams:
        return KnnParams(
            k=trial.suggest_int("k", 2, 64, log=True),
            shrinkage=trial.suggest_float("shrinkage", 0.1, 20.0, log=True),
            weighting=trial.suggest_categorical("weighting", ["uniform", "similarity"]),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.mean_, self.scale_ = scaling(train.features)
        self.points_ = unit_rows(standardize(train.features, self.mean_, self.scale_))
        observed = train.known & (train.weight > 0)
        self.quality_ = np.where(observed, train.quality, 0.0)
        self.weight_ = np.where(observed, train.weight, 0.0)
        self.prior_ = mean_qualities(train)
        self.cost_ = mean_costs(train)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        blocks = [self._block(features[i : i + BLOCK_ROWS]) for i in range(0, rows, BLOCK_ROWS)]
        quality = np.vstack(blocks) if blocks else np.zeros((0, len(self.models_)))
        return quality, broadcast(self.cost_, rows)

    def _block(self, features: Features) -> FloatMatrix:
        similarity = unit_rows(standardize(features, self.mean_, self.scale_)) @ self.points_.T
        quality = np.empty((len(features), len(self.models_)))
        for observed, columns in self._groups():
            quality[:, columns] = self._group(similarity, observed, columns)
        return quality

    def _groups(self) -> list[tuple[IntVector, IntVector]]:
        """Candidates grouped by the training rows where they were observed: with full-information data all
        share one neighbour search; with logged traffic each model searches among the prompts it answered."""
        observed = self.weight_ > 0
        groups: dict[bytes, list[int]] = {}
        for j in range(observed.shape[1]):
            groups.setdefault(observed[:, j].tobytes(), []).append(j)
        return [(np.flatnonzero(observed[:, cols[0]]), np.asarray(cols)) for cols in groups.values()]

    def _group(self, similarity: FloatMatrix, observed: IntVector, columns: IntVector) -> FloatMatrix:
        """Shrunk neighbourhood means of the candidates in `columns` for every prompt of the block."""
        prior = self.prior_[columns]
        if observed.size == 0:
            return np.tile(prior, (len(similarity), 1))
        k = min(self.params.k, observed.size)
        candidates = similarity[:, observed]
        nearest = np.argpartition(-candidates, k - 1, axis=1)[:, :k]
        closeness = np.take_along_axis(candidates, nearest, axis=1)
        closeness = np.ones_like(closeness) if self.params.weighting == "uniform" else np.maximum(closeness, 0.0)
        rows = observed[nearest]
        mass = closeness[:, :, None] * self.weight_[rows][:, :, columns]
        total = mass.sum(axis=1)
        weighted = (mass * self.quality_[rows][:, :, columns]).sum(axis=1)
        local = np.where(total > 0, weighted / np.maximum(total, 1e-12), prior)
        evidence = closeness.sum(axis=1)[:, None]
        pseudo = self.params.shrinkage
        shrunk = (evidence * local + pseudo * prior) / np.maximum(evidence + pseudo, 1e-12)
        return np.asarray(np.clip(np.where(evidence + pseudo > 0, shrunk, prior), 0.0, 1.0), dtype=np.float64)
