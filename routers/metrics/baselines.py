"""Baselines every routing report shows: single models, random at matched cost, Zero router, oracle.

Computed from the true outcome matrices only (no predictions); no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routers.decision import FloatArray, IntArray, choose
from routers.metrics.frontier import Hull, upper_hull


@dataclass(frozen=True)
class OperatingPoint:
    """Mean true cost and mean true quality of one way of routing all prompts."""

    cost: float
    quality: float


@dataclass(frozen=True)
class RandomMix:
    """Best single model with probability `p_best`, else the cheapest single model, per prompt."""

    p_best: float
    cost: float
    quality: float


def single_model_points(quality: FloatArray, cost: FloatArray) -> list[OperatingPoint]:
    """One operating point per model (column): always send every prompt to that model."""
    return [
        OperatingPoint(cost=float(c), quality=float(q))
        for c, q in zip(cost.mean(axis=0), quality.mean(axis=0), strict=True)
    ]


def best_single_model(points: list[OperatingPoint]) -> int:
    """Index of the highest mean quality; ties go to the cheaper, then the earlier (the rule at λ = 0)."""
    quality = np.array([[p.quality for p in points]])
    cost = np.array([[p.cost for p in points]])
    return int(choose(quality, cost, 0.0)[0])


def cheapest_single_model(points: list[OperatingPoint]) -> int:
    """Index of the lowest mean cost; ties go to the better, then the earlier."""
    quality = np.array([p.quality for p in points])
    cost = np.array([p.cost for p in points])
    return int(np.lexsort((-quality, cost))[0])


def random_at_cost(cheapest: OperatingPoint, best: OperatingPoint, target_cost: float) -> RandomMix:
    """The random router whose expected cost matches `target_cost` as closely as the two models allow.

    p = (target − c_cheapest) / (c_best − c_cheapest), clipped to [0, 1]; cost and quality are the same
    mix of the two models' means (expectations are linear). If the best model is the cheapest, p = 1.
    """
    span = best.cost - cheapest.cost
    p_best = 1.0 if span <= 0.0 else min(max((target_cost - cheapest.cost) / span, 0.0), 1.0)
    return RandomMix(
        p_best=p_best,
        cost=cheapest.cost + p_best * (best.cost - cheapest.cost),
        quality=cheapest.quality + p_best * (best.quality - cheapest.quality),
    )


def zero_router(points: list[OperatingPoint]) -> Hull:
    """The Zero router: the non-decreasing hull of the single models (random mixtures of them)."""
    return upper_hull([p.cost for p in points], [p.quality for p in points])


def oracle_choice(quality: FloatArray, cost: FloatArray) -> IntArray:
    """Per prompt, the cheapest model among those with the highest true quality (then the earlier)."""
    return choose(quality, cost, 0.0)


def oracle_frontier(quality: FloatArray, cost: FloatArray) -> Hull:
    """Exact best cost–quality frontier with perfect knowledge of every outcome; it ends at the oracle.

    Each prompt's own hull contributes its segments; taking them in order of falling slope (quality per
    dollar) traces the hull of every per-prompt assignment, so no router's hull can lie above it.
    """
    n = quality.shape[0]
    start_cost = start_quality = 0.0
    step_costs: list[FloatArray] = []
    step_qualities: list[FloatArray] = []
    for row_quality, row_cost in zip(quality, cost, strict=True):
        hull = upper_hull(row_cost, row_quality)
        start_cost += hull.min_cost
        start_quality += float(hull.qualities[0])
        step_costs.append(np.diff(hull.costs))
        step_qualities.append(np.diff(hull.qualities))
    d_cost = np.concatenate(step_costs)
    d_quality = np.concatenate(step_qualities)
    order = np.argsort(-(d_quality / d_cost), kind="stable")
    costs = (start_cost + np.concatenate(([0.0], np.cumsum(d_cost[order])))) / n
    qualities = (start_quality + np.concatenate(([0.0], np.cumsum(d_quality[order])))) / n
    return upper_hull(costs, qualities)
