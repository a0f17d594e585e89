"""Scores a router on logged traffic (one observed model per request, with its propensity) by off-policy
estimation: a doubly-robust cost–quality curve over the λ sweep, its AIQ, and IPS/SNIPS/DR at one λ, including
the paired estimate of how much more utility than the logging policy the router would have earned.

Every logged request is its own event with its own propensity (a prompt sent three times is three events);
intervals are cluster-robust by prompt. Pure: predictions and a TrainingSet in memory. The router's own
predictions are the DR reward model.
"""

from __future__ import annotations

import numpy as np

from routers.base import Prediction
from routers.dataset import TrainingSet
from routers.decision import choose
from routers.metrics import (
    aiq,
    cost_weight_grid,
    doubly_robust,
    doubly_robust_advantage,
    ips,
    one_hot,
    snips,
    upper_hull,
)

MIN_SAMPLES = 2
"""Events and distinct prompts an estimate needs (a standard error needs two clusters)."""


def off_policy_headline(
    prediction: Prediction, data: TrainingSet, prefix: str, cost_weight: float = 0.0
) -> dict[str, float]:
    """`{prefix}_ope_aiq` (AIQ of the DR-estimated λ curve), IPS/SNIPS/DR quality, DR cost and DR utility
    (quality − λ·cost) at `cost_weight` with 95% intervals, the advantage over the logging policy, what the
    logging policy itself achieved, and how many events and effective samples it rests on; {} without enough."""
    events = data.events  # logged requests; public full-information rows have no propensity
    if events.size < MIN_SAMPLES or np.unique(events.rows).size < MIN_SAMPLES:
        return {}
    quality_model = prediction.quality[events.rows]
    cost_model = prediction.cost[events.rows]
    k = len(data.models)
    logged = (events.actions, events.quality, events.propensity)
    costs, qualities = [], []
    for weight in cost_weight_grid(cost_model):
        target = one_hot(choose(quality_model, cost_model, float(weight)), k)
        qualities.append(doubly_robust(*logged, target, quality_model).value)
        costs.append(doubly_robust(events.actions, events.cost, events.propensity, target, cost_model).value)
    logging_cost = float(events.cost.mean())
    max_cost = max(*costs, logging_cost)
    target = one_hot(choose(quality_model, cost_model, cost_weight), k)
    clusters = events.rows
    dr = doubly_robust(*logged, target, quality_model, clusters=clusters)
    dr_cost = doubly_robust(events.actions, events.cost, events.propensity, target, cost_model, clusters=clusters)
    utility = events.quality - cost_weight * events.cost
    utility_model = quality_model - cost_weight * cost_model
    dr_utility = doubly_robust(events.actions, utility, events.propensity, target, utility_model, clusters=clusters)
    advantage = doubly_robust_advantage(
        events.actions, utility, events.propensity, target, utility_model, clusters=clusters
    )
    # SNIPS is undefined when the policy never picks a logged model; the other two still estimate.
    picked = (target[np.arange(events.size), events.actions] > 0).any()
    values = {
        "ope_aiq": aiq(upper_hull(costs, qualities), max_cost) if max_cost > 0 else float(max(qualities)),
        "ips_quality": ips(*logged, target).value,
        "snips_quality": snips(*logged, target).value if picked else np.nan,
        "dr_quality": dr.value,
        "dr_quality_low": dr.low,
        "dr_quality_high": dr.high,
        "dr_cost": dr_cost.value,
        "dr_cost_low": dr_cost.low,
        "dr_cost_high": dr_cost.high,
        "dr_utility": dr_utility.value,
        "dr_utility_low": dr_utility.low,
        "dr_utility_high": dr_utility.high,
        "dr_advantage": advantage.value,
        "dr_advantage_low": advantage.low,
        "dr_advantage_high": advantage.high,
        "logging_quality": float(events.quality.mean()),
        "logging_cost": logging_cost,
        "logging_utility": float(utility.mean()),
        "ope_samples": float(events.size),
        "ope_prompts": float(np.unique(events.rows).size),
        "ope_effective_samples": dr.effective_sample_size,
    }
    return {f"{prefix}_{key}": float(value) for key, value in values.items()}
