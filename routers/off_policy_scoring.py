"""Scores a router on logged traffic (one observed model per prompt, with its propensity) by off-policy
estimation: a doubly-robust cost–quality curve over the λ sweep, its AIQ, and IPS/SNIPS/DR at one λ.

Pure: predictions and a TrainingSet in memory. The router's own predictions are the DR reward model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from routers.base import Prediction
from routers.dataset import FloatMatrix, TrainingSet
from routers.decision import choose
from routers.metrics import aiq, cost_weight_grid, doubly_robust, ips, one_hot, snips, upper_hull

MIN_SAMPLES = 2


@dataclass(frozen=True)
class LoggedSamples:
    """One entry per observed (prompt, model): the prompt's row, the model's column, outcomes, propensity."""

    rows: npt.NDArray[np.intp]
    actions: npt.NDArray[np.intp]
    quality: FloatMatrix
    cost: FloatMatrix
    propensity: FloatMatrix


def logged_rows(data: TrainingSet) -> npt.NDArray[np.intp]:
    """Prompts logged by a stochastic policy: some but not every candidate's outcome, and a propensity below 1
    (a training weight above 1). Public data with a few unknown outcomes is not bandit feedback."""
    known = data.known
    stochastic = (data.weight > 1.0).any(axis=1)
    return np.flatnonzero(known.any(axis=1) & ~known.all(axis=1) & stochastic)


def logged_samples(data: TrainingSet) -> LoggedSamples:
    """Every observed (prompt, model) of the logged prompts; propensity = 1 / its training weight."""
    rows = logged_rows(data)
    mask = np.zeros_like(data.known)
    mask[rows] = data.known[rows]
    prompt_index, actions = np.nonzero(mask)
    return LoggedSamples(
        rows=prompt_index.astype(np.intp),
        actions=actions.astype(np.intp),
        quality=data.quality[prompt_index, actions],
        cost=np.nan_to_num(data.cost[prompt_index, actions]),
        propensity=1.0 / data.weight[prompt_index, actions],
    )


def off_policy_headline(
    prediction: Prediction, data: TrainingSet, prefix: str, cost_weight: float = 0.0
) -> dict[str, float]:
    """`{prefix}_ope_aiq` (AIQ of the DR-estimated λ curve), IPS/SNIPS/DR quality and DR cost at
    `cost_weight` with 95% intervals, and what the logging policy itself achieved; {} without logged rows."""
    samples = logged_samples(data)
    if samples.rows.size < MIN_SAMPLES:
        return {}
    quality_model = prediction.quality[samples.rows]
    cost_model = prediction.cost[samples.rows]
    k = len(data.models)
    costs, qualities = [], []
    for weight in cost_weight_grid(cost_model):
        target = one_hot(choose(quality_model, cost_model, float(weight)), k)
        qualities.append(
            doubly_robust(samples.actions, samples.quality, samples.propensity, target, quality_model).value
        )
        costs.append(doubly_robust(samples.actions, samples.cost, samples.propensity, target, cost_model).value)
    logging_cost = float(samples.cost.mean())
    max_cost = max(*costs, logging_cost)
    target = one_hot(choose(quality_model, cost_model, cost_weight), k)
    logged = (samples.actions, samples.quality, samples.propensity, target)
    dr = doubly_robust(*logged, quality_model)
    dr_cost = doubly_robust(samples.actions, samples.cost, samples.propensity, target, cost_model)
    # SNIPS is undefined when the policy never picks a logged model; the other two still estimate.
    snips_value = snips(*logged).value if (target[np.arange(samples.rows.size), samples.actions] > 0).any() else np.nan
    values = {
        "ope_aiq": aiq(upper_hull(costs, qualities), max_cost) if max_cost > 0 else float(max(qualities)),
        "ips_quality": ips(*logged).value,
        "snips_quality": snips_value,
        "dr_quality": dr.value,
        "dr_quality_low": dr.low,
        "dr_quality_high": dr.high,
        "dr_cost": dr_cost.value,
        "dr_cost_low": dr_cost.low,
        "dr_cost_high": dr_cost.high,
        "dr_utility": dr.value - cost_weight * dr_cost.value,
        "logging_quality": float(samples.quality.mean()),
        "logging_cost": logging_cost,
        "logging_utility": float(samples.quality.mean()) - cost_weight * logging_cost,
        "ope_samples": float(samples.rows.size),
        "ope_effective_samples": dr.effective_sample_size,
    }
    return {f"{prefix}_{key}": float(value) for key, value in values.items()}
