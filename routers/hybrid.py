"""Hybrid router (Hybrid-LLM, Ding et al. 2024): a classifier of "the small model is as good as the large one".

Its probability becomes the small model's expected quality, so the shared λ rule realises the routing
threshold; the family never decides and does no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router, RouterError
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.logistic import fit_logistic_regression, logistic_probability
from routers.model_pair import choose_pair
from routers.preprocessing import scaling, standardize

MIN_SHORTFALL = 1e-3
"""The small model's expected shortfall is kept above this, so its prediction always depends on P."""


class HybridParams(BaseModel):
    """Which two models, how the label is relaxed, the routing threshold and the classifier's penalty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    large_model: str = ""
    """Empty: the model with the best weighted mean training quality."""
    small_model: str = ""
    """Empty: the cheapest model whose mean quality is within `quality_gap` of the large model's."""
    quality_gap: float = Field(default=0.15, ge=0.0, le=1.0)
    tolerance: float = Field(default=0.0, ge=0.0, le=1.0)
    """t of the relaxed label q_small ≥ q_large − t (only graded qualities feel 0 < t < 1)."""
    threshold: float = Field(default=1.0, gt=0.0, le=1.0)
    """τ: at λ = 0 the small model wins where P(as good) > τ; 1 keeps predictions honest expectations."""
    other_margin: float = Field(default=0.0, ge=0.0, le=1.0)
    """Every other candidate is predicted at its mean quality minus this margin."""
    l2: float = Field(default=0.1, gt=0.0)
    """L2 penalty of the logistic classifier(s) on standardised features."""
    min_pairs: int = Field(default=30, ge=1)
    """Prompts with both outcomes known needed to learn the paired label directly (else: factorised)."""


class HybridRouter(Router[HybridParams]):
    """P(x) = P(q_small(x) ≥ q_large(x) − t); q̂_small(x) = q̄_large − (τ − P(x))·D, q̂_large = q̄_large."""

    family = "hybrid"
    source = "Hybrid LLM (Ding et al., ICLR 2024, arXiv:2404.14618)"
    Params = HybridParams
    features = "fast"

    @classmethod
    def search_space(cls, trial: Any) -> HybridParams:
        return HybridParams(
            quality_gap=trial.suggest_float("quality_gap", 0.05, 0.3),
            tolerance=trial.suggest_float("tolerance", 0.0, 0.5),
            threshold=trial.suggest_float("threshold", 0.5, 1.0),
            other_margin=trial.suggest_float("other_margin", 0.0, 0.3),
            l2=trial.suggest_float("l2", 1e-3, 10.0, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.cost_ = mean_costs(train)
        self.quality_ = mean_qualities(train)
        small, large = choose_pair(
            train.models,
            self.quality_,
            self.cost_,
            self.params.quality_gap,
            cheap=self.params.small_model,
            strong=self.params.large_model,
        )
        self.pair_ = np.array([small, large], dtype=np.int64)
        self.mean_, self.scale_ = scaling(train.features)
        inputs = standardize(train.features, self.mean_, self.scale_)
        self.coef_, self.intercept_ = self._classifier(inputs, train, small, large)
        as_good = float(self._as_good(inputs).mean()) if len(inputs) else 0.0
        gap = max(float(self.quality_[large] - self.quality_[small]), 0.0)
        # D, the expected shortfall when the small model is worse, calibrated so that at τ = 1 the mean
        # prediction for the small model equals its observed mean quality.
        shortfall = min(max(gap / max(1.0 - as_good, MIN_SHORTFALL), MIN_SHORTFALL), 1.0)
        self.shortfall_ = np.array([shortfall])

    def _classifier(
        self, inputs: FloatMatrix, train: TrainingSet, small: int, large: int
    ) -> tuple[FloatMatrix, FloatMatrix]:
        """One row of (coef, intercept) for the paired label, or two (small, large) success models."""
        observed = train.known & (train.weight > 0)
        both = observed[:, small] & observed[:, large]
        if small != large and both.sum() >= self.params.min_pairs:
            label = train.quality[both, small] >= train.quality[both, large] - self.params.tolerance
            weight = train.weight[both, small] * train.weight[both, large]
            coef, intercept = fit_logistic_regression(inputs[both], label, weight, self.params.l2)
            return coef[None, :], np.array([intercept])
        # Logged traffic rarely shows both models on one prompt: learn each model's success instead.
        fits = [
            fit_logistic_regression(
                inputs[observed[:, j]],
                train.quality[observed[:, j], j],
                train.weight[observed[:, j], j],
                self.params.l2,
            )
            for j in (small, large)
        ]
        return np.stack([c for c, _ in fits]), np.array([b for _, b in fits])

    def _as_good(self, inputs: FloatMatrix) -> FloatMatrix:
        """P(q_small ≥ q_large − t) per prompt."""
        if self.coef_.shape[0] == 1:
            return logistic_probability(inputs, self.coef_[0], float(self.intercept_[0]))
        if self.params.tolerance >= 1.0:
            return np.ones(len(inputs))
        small = logistic_probability(inputs, self.coef_[0], float(self.intercept_[0]))
        large = logistic_probability(inputs, self.coef_[1], float(self.intercept_[1]))
        # Independent Bernoulli outcomes: the small model falls short only when it fails and the large succeeds.
        return np.asarray(1.0 - large * (1.0 - small), dtype=np.float64)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        small, large = (int(i) for i in self.pair_)
        quality = broadcast(np.clip(self.quality_ - self.params.other_margin, 0.0, 1.0), rows)
        quality[:, large] = self.quality_[large]
        if small != large and rows:
            as_good = self._as_good(standardize(features, self.mean_, self.scale_))
            drop = (self.params.threshold - as_good) * float(self.shortfall_[0])
            quality[:, small] = np.clip(self.quality_[large] - drop, 0.0, 1.0)
        return quality, broadcast(self.cost_, rows)

    def small_large(self) -> tuple[str, str]:
        """Names of the (small, large) pair the router was fitted for."""
        if not self.models_:
            raise RouterError("hybrid router is not fitted; call fit() or load a trained router")
        return self.models_[int(self.pair_[0])], self.models_[int(self.pair_[1])]
