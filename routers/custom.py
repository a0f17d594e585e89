"""The example user router of the `custom` family: k-means clusters of prompts, a mean quality per cluster.

Copy it to start your own (docs/routers/custom.md). Like every family it never decides and does no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet


class CustomParams(BaseModel):
    """Hyper-parameters: frozen, defaults that work, validated bounds (saved with the router as JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clusters: int = Field(default=8, ge=1)
    """Prompt clusters (fewer when the training set has fewer distinct prompts)."""
    shrinkage: float = Field(default=5.0, ge=0.0)
    """Pseudo-prompts at the model's global mean quality added to every cluster."""


class CustomRouter(Router[CustomParams]):
    """Per-cluster prior: a prompt gets, for each model, the shrunk weighted mean quality of its cluster."""

    family = "custom"
    source = "an example user router: per-cluster priors as in UniRoute (Jitkrittum et al., arXiv:2502.08773)"
    Params = CustomParams
    features = "fast"

    @classmethod
    def search_space(cls, trial: Any) -> CustomParams:
        return CustomParams(
            clusters=trial.suggest_int("clusters", 2, 32, log=True),
            shrinkage=trial.suggest_float("shrinkage", 0.1, 50.0, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        # Imported here: serving predicts with numpy alone and never loads scikit-learn.
        from sklearn.cluster import KMeans

        points = np.asarray(train.features, dtype=np.float64)
        clusters = min(self.params.clusters, len(np.unique(points, axis=0)))
        kmeans = KMeans(n_clusters=clusters, n_init=3, random_state=self.seed).fit(points)
        # Learned state: numpy attributes ending in `_`, saved and restored by the base class.
        self.centroids_ = np.asarray(kmeans.cluster_centers_, dtype=np.float64)
        self.quality_ = self._cluster_qualities(train, self._assign(points))
        self.cost_ = mean_costs(train)

    def _cluster_qualities(self, train: TrainingSet, labels: np.ndarray) -> FloatMatrix:
        """(clusters, models): weighted mean known quality per cell, shrunk toward the model's mean."""
        observed = train.known & (train.weight > 0)
        weight = np.where(observed, train.weight, 0.0)
        quality = np.where(observed, train.quality, 0.0)
        member = labels[None, :] == np.arange(len(self.centroids_))[:, None]
        mass, count = member @ weight, member @ observed.astype(np.float64)
        local = np.where(mass > 0, (member @ (weight * quality)) / np.maximum(mass, 1e-12), 0.0)
        prior = mean_qualities(train)[None, :]
        shrunk = (count * local + self.params.shrinkage * prior) / np.maximum(count + self.params.shrinkage, 1e-12)
        return np.asarray(np.where(count + self.params.shrinkage > 0, shrunk, prior), dtype=np.float64)

    def _assign(self, points: FloatMatrix) -> np.ndarray:
        """Index of the nearest centroid, computed in numpy so predictions are exact after loading."""
        # ‖x − c‖² up to the per-prompt constant ‖x‖², which does not change the argmin.
        distances = (self.centroids_**2).sum(axis=1)[None, :] - 2.0 * points @ self.centroids_.T
        return np.asarray(distances.argmin(axis=1), dtype=np.intp)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        labels = self._assign(np.asarray(features, dtype=np.float64))
        return self.quality_[labels], broadcast(self.cost_, rows)
