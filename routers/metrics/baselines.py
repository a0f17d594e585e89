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
    return _assignment_frontier(quality, cost, np.ones(quality.shape[0]))


def task_oracle_frontier(quality: FloatArray, cost: FloatArray, groups: IntArray) -> Hull:
    """Best frontier of a router that knows only each prompt's group (its task), nothing about the prompt.

    Within a group every prompt gets the same model (or the same mixture), so a group acts as one prompt
    with the group's mean outcomes, weighted by its size; at λ = 0 it is the best single model per task.
    """
    labels = np.asarray(groups).ravel()
    if labels.shape != (quality.shape[0],):
        raise ValueError(f"need one group per prompt, got {labels.size} for {quality.shape[0]} prompts")
    names, index = np.unique(labels, return_inverse=True)
    size = np.bincount(index, minlength=names.size).astype(np.float64)
    member = np.arange(names.size)[:, None] == index[None, :]
    mean_quality = (member @ quality) / size[:, None]
    mean_cost = (member @ cost) / size[:, None]
    return _assignment_frontier(mean_quality, mean_cost, size)


def _assignment_frontier(quality: FloatArray, cost: FloatArray, weight: FloatArray) -> Hull:
    """Hull of every assignment of rows to models (rows weighted by `weight`), from each row's own hull."""
    total = float(weight.sum())
    start_cost = start_quality = 0.0
    step_costs: list[FloatArray] = []
    step_qualities: list[FloatArray] = []
    for row_quality, row_cost, row_weight in zip(quality, cost, weight, strict=True):
        hull = upper_hull(row_cost, row_quality)
        start_cost += row_weight * hull.min_cost
        start_quality += row_weight * float(hull.qualities[0])
        step_costs.append(row_weight * np.diff(hull.costs))
        step_qualities.append(row_weight * np.diff(hull.qualities))
    d_cost = np.concatenate(step_costs)
    d_quality = np.concatenate(step_qualities)
    order = np.argsort(-(d_quality / d_cost), kind="stable")
    costs = (start_cost + np.concatenate(([0.0], np.cumsum(d_cost[order])))) / total
    qualities = (start_quality + np.concatenate(([0.0], np.cumsum(d_quality[order])))) / total
    return upper_hull(costs, qualities)


def gap_closed(value: float, zero: float, oracle: float) -> float | None:
    """Share of the Zero-router-to-oracle gap a router closes: (value − zero) / (oracle − zero).

    0 = no better than mixing single models, 1 = the oracle; None when the oracle is not above the Zero router.
    """
    span = oracle - zero
    return None if span <= 0.0 else (value - zero) / span


def cost_saving(hull: Hull, best: OperatingPoint, fraction: float) -> float | None:
    """1 − (cost at which `hull` reaches `fraction` of the best model's quality) / (the best model's cost).

    None when the hull never reaches it or the best model is free.
    """
    cost = hull.cost_to_reach(fraction * best.quality)
    return None if cost is None or best.cost <= 0.0 else 1.0 - cost / best.cost
