"""The cost–quality curve of a router: sweep the cost weight λ, decide with `routers.decision.choose`.

Scores decisions on the true outcomes; it never re-implements the decision rule or reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routers.decision import FloatArray, IntArray, choose

GRID_DECADES = 3
"""Decades of λ on each side of 1 / (typical predicted cost spread): quality dominates → cost dominates."""
GRID_STEPS_PER_DECADE = 10


@dataclass(frozen=True)
class Curve:
    """One operating point per cost weight: mean true cost and mean true quality of the chosen models."""

    cost_weights: FloatArray
    costs: FloatArray
    qualities: FloatArray


def cost_scale(pred_cost: FloatArray) -> float:
    """Typical predicted cost gap between a prompt's candidates: the median positive per-prompt spread.

    Falls back to the median positive predicted cost, then to 1, when no prompt has a spread.
    """
    pred_cost = np.atleast_2d(np.asarray(pred_cost, dtype=np.float64))
    spread = pred_cost.max(axis=1) - pred_cost.min(axis=1)
    for values in (spread, pred_cost.ravel()):
        positive = values[values > 0.0]
        if positive.size:
            return float(np.median(positive))
    return 1.0


def cost_weight_grid(
    pred_cost: FloatArray, decades: int = GRID_DECADES, steps_per_decade: int = GRID_STEPS_PER_DECADE
) -> FloatArray:
    """0, a geometric grid centred on 1 / cost_scale(pred_cost), and +inf (always the cheapest)."""
    if decades < 1 or steps_per_decade < 1:
        raise ValueError(f"decades and steps_per_decade must be >= 1, got {decades} and {steps_per_decade}")
    exponents = np.linspace(-decades, decades, 2 * decades * steps_per_decade + 1)
    geometric = 10.0**exponents / cost_scale(pred_cost)
    return np.concatenate(([0.0], geometric, [np.inf]))


def outcome_of(choice: IntArray, quality: FloatArray, cost: FloatArray) -> tuple[float, float]:
    """(mean true cost, mean true quality) when prompt i goes to candidate choice[i]."""
    rows = np.arange(choice.size)
    return float(cost[rows, choice].mean()), float(quality[rows, choice].mean())


def sweep(
    quality: FloatArray,
    cost: FloatArray,
    pred_quality: FloatArray,
    pred_cost: FloatArray,
    cost_weights: FloatArray,
) -> Curve:
    """Decide on the predictions at each cost weight and score the choices on the true outcomes."""
    costs: list[float] = []
    qualities: list[float] = []
    for weight in cost_weights:
        point_cost, point_quality = outcome_of(choose(pred_quality, pred_cost, float(weight)), quality, cost)
        costs.append(point_cost)
        qualities.append(point_quality)
    return Curve(
        cost_weights=np.asarray(cost_weights, dtype=np.float64),
        costs=np.asarray(costs, dtype=np.float64),
        qualities=np.asarray(qualities, dtype=np.float64),
    )
