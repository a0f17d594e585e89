"""A fitted featurizer and router together: prompts in, per-candidate predictions and decisions out.

The one path from prompt to decision, used by batch routing, the MLflow pyfunc and the gateway (no skew).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.base import Featurizer
from features.prompt import prompt_id
from routers.base import AnyRouter, Prediction
from routers.decision import choose

DECISION_ID = "id"
DECISION_MODEL = "model"
DECISION_QUALITY = "quality"
DECISION_COST = "cost"
"""Keys of one line of the decisions format (`routeiq route` writes it, `routeiq eval` reads it)."""


@dataclass(frozen=True)
class RoutedDecision:
    """One decision in the decisions format: the chosen model and every candidate's predictions."""

    id: str
    model: str
    quality: dict[str, float]
    cost: dict[str, float]

    def as_record(self) -> dict[str, Any]:
        return {
            DECISION_ID: self.id,
            DECISION_MODEL: self.model,
            DECISION_QUALITY: self.quality,
            DECISION_COST: self.cost,
        }


class RoutingModel:
    """Featurize, predict, decide. Stateless beyond the fitted parts it holds."""

    def __init__(self, featurizer: Featurizer, router: AnyRouter) -> None:
        self.featurizer = featurizer
        self.router = router

    @property
    def models(self) -> tuple[str, ...]:
        return self.router.models_

    def predict(self, prompts: Sequence[str], candidates: Sequence[str] | None = None) -> Prediction:
        return self.router.predict(self.featurizer.transform(list(prompts)), candidates)

    def decide(
        self,
        prompts: Sequence[str],
        candidates: Sequence[str] | None = None,
        cost_weight: float = 0.0,
        ids: Sequence[str] | None = None,
    ) -> list[RoutedDecision]:
        """Decisions for a batch; ids default to each prompt's `prompt_id`."""
        return self.decide_each(prompts, candidates, [cost_weight] * len(prompts), ids)

    def decide_each(
        self,
        prompts: Sequence[str],
        candidates: Sequence[str] | None,
        cost_weights: Sequence[float],
        ids: Sequence[str] | None = None,
    ) -> list[RoutedDecision]:
        """Decisions for a batch whose prompts each carry their own λ (the gateway batches concurrent
        requests); one prediction for the whole batch, one argmax per distinct λ."""
        if len(cost_weights) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(cost_weights)} cost weights")
        names = list(candidates) if candidates else list(self.models)
        prediction = self.predict(prompts, names)
        chosen = np.zeros(len(prompts), dtype=np.intp)
        weights = np.asarray(cost_weights, dtype=np.float64)
        for weight in np.unique(weights):
            rows = np.flatnonzero(weights == weight)
            chosen[rows] = choose(prediction.quality[rows], prediction.cost[rows], float(weight))
        keys = list(ids) if ids is not None else [prompt_id(p) for p in prompts]
        return [
            RoutedDecision(
                id=keys[i],
                model=names[int(chosen[i])],
                quality=dict(zip(names, map(float, prediction.quality[i]), strict=True)),
                cost=dict(zip(names, map(float, prediction.cost[i]), strict=True)),
            )
            for i in range(len(keys))
        ]
