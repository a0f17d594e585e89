"""Scores a router's predictions against known outcomes with the routing metrics (tuning and registration).

Pure: takes predictions and a TrainingSet in memory; prompts missing any candidate's outcome are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from routers.base import Prediction
from routers.dataset import TrainingSet
from routers.decision import choose
from routers.metrics import RoutingData, routing_report
from routers.off_policy_scoring import off_policy_headline

HEADLINE = (
    "aiq",
    "aiq_vs_oracle",
    "max_quality",
    "oracle_gap",
    "cost_saving_at_95pct_quality",
    "quality_at_best_model_cost",
)


def complete_rows(data: TrainingSet) -> np.ndarray:
    """Indices of prompts whose every model has a known quality and cost."""
    return np.flatnonzero(~np.isnan(data.quality).any(axis=1) & ~np.isnan(data.cost).any(axis=1))


def score(prediction: Prediction, data: TrainingSet, cost_weight: float = 0.0) -> dict[str, Any]:
    """The full routing report over complete prompts, decisions made at `cost_weight`."""
    rows = complete_rows(data)
    if rows.size == 0:
        raise ValueError("no prompt has every candidate's outcome; score on full-information data")
    pred_quality, pred_cost = prediction.quality[rows], prediction.cost[rows]
    return routing_report(
        RoutingData(
            models=data.models,
            quality=data.quality[rows],
            cost=data.cost[rows],
            pred_quality=pred_quality,
            pred_cost=pred_cost,
            chosen=choose(pred_quality, pred_cost, cost_weight),
        )
    )


def headline(report: dict[str, Any], prefix: str) -> dict[str, float]:
    """Flat numeric metrics for MLflow and tags: `<prefix>_aiq`, ... (missing values are left out)."""
    router = report["router"]
    values = {f"{prefix}_{key}": router[key] for key in HEADLINE}
    values[f"{prefix}_zero_router_aiq"] = report["zero_router"]["aiq"]
    values[f"{prefix}_oracle_aiq"] = report["oracle"]["aiq"]
    values[f"{prefix}_best_single_quality"] = report["best_single_model"]["quality"]
    values[f"{prefix}_best_single_cost"] = report["best_single_model"]["cost"]
    return {k: float(v) for k, v in values.items() if v is not None}


def metrics_for(prediction: Prediction, data: TrainingSet, prefix: str, cost_weight: float = 0.0) -> dict[str, float]:
    """Every metric `data` supports: the full-information headline on complete prompts, off-policy estimates
    on logged ones. With logged traffic only, `{prefix}_aiq` is the off-policy AIQ, so tuning and the
    promotion gate work on either kind of data."""
    found = off_policy_headline(prediction, data, prefix, cost_weight)
    if complete_rows(data).size:
        found |= headline(score(prediction, data, cost_weight), prefix)
    elif found:
        found[f"{prefix}_aiq"] = found[f"{prefix}_ope_aiq"]
    else:
        raise ValueError("no prompt has a known outcome; nothing to score")
    return found
