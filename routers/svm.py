"""Support-vector router: per model, an RBF-kernel SVM classifier of success, Platt-scaled to a quality.

Trained with scikit-learn's SVC; predicted in numpy from the saved support vectors (exact after load).
It never decides and never does I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router
from routers.calibration import fit_logistic, logit, sigmoid
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize, unit_mean

BLOCK_ROWS = 512
"""Prompts scored per block, bounding the (prompts × support vectors) kernel matrix in memory."""


class SvmParams(BaseModel):
    """The classifier's penalty, the kernel width relative to the usual heuristic, and the fallback."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    c: float = Field(default=0.3, gt=0.0)
    """SVC's `C`; sample weights are rescaled to mean 1 per model first, so it means the same on logs."""
    gamma_scale: float = Field(default=0.3, gt=0.0)
    """RBF width as a multiple of scikit-learn's "scale" heuristic, 1 / (features · variance)."""
    min_rows: int = Field(default=8, ge=2)
    """Models with fewer known rows (or one class only) predict their weighted mean quality."""


class SvmRouter(Router[SvmParams]):
    """Per model j: quality = sigmoid(a_j · f_j(x) + b_j), with f_j the RBF SVC decision function
    f_j(x) = intercept_j + Σ dual_i · exp(−γ‖x − sv_i‖²) over model j's support vectors."""

    family = "svm"
    source = "RouterBench-style per-model classifier; RBF SVM with Platt scaling (Platt, 1999)"
    Params = SvmParams

    @classmethod
    def search_space(cls, trial: Any) -> SvmParams:
        return SvmParams(
            c=trial.suggest_float("c", 0.01, 100.0, log=True),
            gamma_scale=trial.suggest_float("gamma_scale", 0.1, 10.0, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.mean_, self.scale_ = scaling(train.features)
        scaled = standardize(train.features, self.mean_, self.scale_)
        self.gamma_ = np.asarray([self.params.gamma_scale / (scaled.shape[1] * max(float(scaled.var()), 1e-12))])
        fallback = mean_qualities(train)
        parts = [self._model(scaled, train, j, float(fallback[j])) for j in range(len(self.models_))]
        self.support_ = np.vstack([part.vectors for part in parts])
        self.dual_ = np.concatenate([part.dual for part in parts])
        self.offsets_ = np.cumsum([0] + [len(part.dual) for part in parts]).astype(np.int64)
        self.intercept_ = np.asarray([part.intercept for part in parts])
        self.platt_ = np.asarray([part.platt for part in parts])
        self.cost_ = mean_costs(train)

    def _model(self, scaled: FloatMatrix, train: TrainingSet, j: int, fallback: float) -> _Part:
        """Model j's classifier and calibration (no support vectors and its mean quality as a fallback)."""
        known = train.known[:, j] & (train.weight[:, j] > 0)
        quality = np.where(known, train.quality[:, j], 0.5)
        # A quality of q counts as a win with confidence |2q − 1|: binary outcomes keep their full weight.
        labels = quality >= 0.5
        confidence = np.where(known, train.weight[:, j] * np.abs(2.0 * quality - 1.0), 0.0)
        rows = np.flatnonzero(confidence > 0)
        if rows.size < self.params.min_rows or labels[rows].all() or not labels[rows].any():
            return _Part(np.zeros((0, scaled.shape[1])), np.zeros(0), 0.0, (0.0, logit(fallback)))
        # Imported here: serving predicts with numpy alone and never loads scikit-learn.
        from sklearn.svm import SVC

        svc = SVC(kernel="rbf", C=self.params.c, gamma=float(self.gamma_[0]))
        svc.fit(scaled[rows], labels[rows], sample_weight=unit_mean(confidence[rows]))
        part = _Part(
            np.asarray(svc.support_vectors_, dtype=np.float64),
            np.asarray(svc.dual_coef_[0], dtype=np.float64),
            float(svc.intercept_[0]),
            (0.0, 0.0),
        )
        observed = np.flatnonzero(known)
        scores = self._decision(scaled[observed], part.vectors, part.dual, part.intercept)
        platt = fit_logistic(scores, quality[observed], train.weight[observed, j])
        return part._replace(platt=platt)

    def _decision(self, scaled: FloatMatrix, vectors: FloatMatrix, dual: FloatMatrix, intercept: float) -> FloatMatrix:
        squared = (scaled**2).sum(axis=1)[:, None] + (vectors**2).sum(axis=1)[None, :]
        kernel = np.exp(-self.gamma_[0] * np.maximum(squared - 2.0 * scaled @ vectors.T, 0.0))
        return np.asarray(kernel @ dual + intercept, dtype=np.float64)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        blocks = [self._block(features[i : i + BLOCK_ROWS]) for i in range(0, rows, BLOCK_ROWS)]
        quality = np.vstack(blocks) if blocks else np.zeros((0, len(self.models_)))
        return quality, broadcast(self.cost_, rows)

    def _block(self, features: Features) -> FloatMatrix:
        scaled = standardize(features, self.mean_, self.scale_)
        return np.column_stack([self._candidate(scaled, j) for j in range(len(self.models_))])

    def _candidate(self, scaled: FloatMatrix, j: int) -> FloatMatrix:
        start, stop = int(self.offsets_[j]), int(self.offsets_[j + 1])
        vectors, dual = self.support_[start:stop], self.dual_[start:stop]
        slope, intercept = self.platt_[j]
        return sigmoid(slope * self._decision(scaled, vectors, dual, float(self.intercept_[j])) + intercept)


class _Part(NamedTuple):
    """One model's learned pieces before they are packed into the router's arrays."""

    vectors: FloatMatrix
    dual: FloatMatrix
    intercept: float
    platt: tuple[float, float]
