"""Elo (Bradley–Terry) router: one prompt-independent rating per model from pairwise wins, mapped to quality.

Predicts the same qualities for every prompt; it never decides, never reads the features' values, no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router
from routers.calibration import fit_logistic, sigmoid
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet


class EloParams(BaseModel):
    """Strength of the prior, MM iterations, and how many comparisons it takes to trust the ratings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prior: float = Field(default=1.0, gt=0.0)
    """Virtual games won and lost against an average model: keeps ratings finite and the fit convergent."""
    iterations: int = Field(default=200, ge=1)
    """Minorise–maximise steps (stops earlier once the strengths stop moving)."""
    blend: float = Field(default=20.0, ge=0.0)
    """Comparisons at which a model's rating-based quality and its plain mean quality weigh the same."""


class EloRouter(Router[EloParams]):
    """Bradley–Terry strengths by the MM algorithm, a logistic map rating → mean quality, blended with the
    weighted mean quality by each model's number of comparisons (logged traffic has none: the mean rules)."""

    family = "elo"
    source = (
        "Bradley–Terry ratings as in Chatbot Arena (Chiang et al., 2024, arXiv:2403.04132); RouteLLM's Elo baseline"
    )
    Params = EloParams

    @classmethod
    def search_space(cls, trial: Any) -> EloParams:
        return EloParams(
            prior=trial.suggest_float("prior", 0.1, 10.0, log=True),
            blend=trial.suggest_float("blend", 0.1, 1000.0, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        wins = pairwise_wins(train)
        games = wins + wins.T
        self.rating_ = np.log(self._strengths(wins))
        mean = mean_qualities(train)
        evidence = np.where(train.known, train.weight, 0.0).sum(axis=0)
        slope, intercept = fit_logistic(self.rating_, mean, evidence)
        # A higher rating never means a lower quality; equal ratings give every model the overall mean.
        rated = sigmoid(max(slope, 0.0) * self.rating_ + intercept)
        trust = games.sum(axis=1) / np.maximum(games.sum(axis=1) + self.params.blend, 1e-12)
        self.quality_ = np.clip(trust * rated + (1.0 - trust) * mean, 0.0, 1.0)
        self.cost_ = mean_costs(train)

    def _strengths(self, wins: FloatMatrix) -> FloatMatrix:
        """Hunter's MM updates for Bradley–Terry, each model also playing `prior` wins and losses against a
        virtual model of strength 1 (which also fixes the scale)."""
        games = wins + wins.T
        won = wins.sum(axis=1) + self.params.prior
        strength = np.ones(len(wins))
        for _ in range(self.params.iterations):
            pair = games / (strength[:, None] + strength[None, :])
            updated = np.asarray(won / (pair.sum(axis=1) + 2.0 * self.params.prior / (strength + 1.0)), np.float64)
            if np.abs(np.log(updated) - np.log(strength)).max() < 1e-10:
                return updated
            strength = updated
        return strength

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        return broadcast(self.quality_, rows), broadcast(self.cost_, rows)


def pairwise_wins(train: TrainingSet) -> FloatMatrix:
    """wins[a, b]: weighted count of prompts where a's known quality beat b's. A pair weighs the geometric
    mean of its two sample weights (1 for full-information data); ties carry no information."""
    known = train.known & (train.weight > 0)
    quality = np.where(known, train.quality, 0.0)
    root = np.sqrt(np.where(known, train.weight, 0.0))
    rows = [
        (root[:, [a]] * root * ((quality[:, [a]] > quality) & known[:, [a]] & known)).sum(axis=0)
        for a in range(quality.shape[1])
    ]
    return np.asarray(rows, dtype=np.float64).reshape(quality.shape[1], quality.shape[1])
