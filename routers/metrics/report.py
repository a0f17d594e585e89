"""Assemble the JSON-able routing report from true outcomes, predictions and the router's own decisions.

Only combines the metric modules (docs/metrics.md defines every key); it reads no files and defines no metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from routers.decision import FloatArray, IntArray
from routers.metrics.baselines import (
    OperatingPoint,
    best_single_model,
    cheapest_single_model,
    cost_saving,
    oracle_choice,
    oracle_frontier,
    random_at_cost,
    single_model_points,
    zero_router,
)
from routers.metrics.frontier import Hull, aiq, upper_hull
from routers.metrics.sweep import Curve, cost_weight_grid, outcome_of, sweep
from routers.metrics.two_model import CPT_LEVELS, pgr_curve, pgr_of, switch_cost_weights

QUALITY_TARGET_FRACTION = 0.95
"""Cost saving is measured where the router reaches this fraction of the best single model's quality."""

Report = dict[str, Any]


@dataclass(frozen=True)
class RoutingData:
    """Everything scored, aligned on (prompt, candidate): true and predicted outcomes and the decisions."""

    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray
    pred_quality: FloatArray
    pred_cost: FloatArray
    chosen: IntArray

    def __post_init__(self) -> None:
        shape = (self.chosen.size, len(self.models))
        if 0 in shape:
            raise ValueError(f"need at least one prompt and one candidate, got shape {shape}")
        for name in ("quality", "cost", "pred_quality", "pred_cost"):
            matrix = getattr(self, name)
            if matrix.shape != shape:
                raise ValueError(f"{name} has shape {matrix.shape}, expected (prompts, candidates) = {shape}")
            if not np.all(np.isfinite(matrix)):
                raise ValueError(f"{name} must be finite; drop prompts with unknown outcomes first")
        if np.any((self.chosen < 0) | (self.chosen >= shape[1])):
            raise ValueError(f"chosen indices must lie in [0, {shape[1]})")


@dataclass(frozen=True)
class _Scored:
    curve: Curve
    router: Hull
    singles: list[OperatingPoint]
    best: int
    cheapest: int
    oracle: OperatingPoint
    oracle_hull: Hull
    decisions: OperatingPoint
    max_cost: float


def routing_report(data: RoutingData) -> Report:
    """The metrics part of the evaluation report: router, decisions, baselines, two-model settings."""
    s = _score(data)
    zero = zero_router(s.singles)
    report: Report = {
        "candidates": list(data.models),
        "max_cost": s.max_cost,
        "router": _router_section(s),
        "decisions": {**_point(s.decisions), "share": _share(data.chosen, data.models)},
        "single_models": {model: _point(p) for model, p in zip(data.models, s.singles, strict=True)},
        "best_single_model": _best_section(data, s),
        "random": _random_section(data, s),
        "zero_router": {"hull": _points(zero), "aiq": aiq(zero, s.max_cost)},
        "oracle": {
            **_point(s.oracle),
            "share": _share(oracle_choice(data.quality, data.cost), data.models),
            "hull": _points(s.oracle_hull),
            "aiq": aiq(s.oracle_hull, s.max_cost),
        },
        "two_model": _two_model_section(data, s),
    }
    return {"summary": _summary(report, data.chosen.size), **report}


def _score(data: RoutingData) -> _Scored:
    curve = sweep(data.quality, data.cost, data.pred_quality, data.pred_cost, cost_weight_grid(data.pred_cost))
    singles = single_model_points(data.quality, data.cost)
    oracle = OperatingPoint(*outcome_of(oracle_choice(data.quality, data.cost), data.quality, data.cost))
    decisions = OperatingPoint(*outcome_of(data.chosen, data.quality, data.cost))
    max_cost = max(float(curve.costs.max()), *(p.cost for p in singles), oracle.cost, decisions.cost)
    return _Scored(
        curve=curve,
        router=upper_hull(curve.costs, curve.qualities),
        singles=singles,
        best=best_single_model(singles),
        cheapest=cheapest_single_model(singles),
        oracle=oracle,
        oracle_hull=oracle_frontier(data.quality, data.cost),
        decisions=decisions,
        max_cost=max_cost,
    )


def _router_section(s: _Scored) -> Report:
    best = s.singles[s.best]
    cost_at_target = s.router.cost_to_reach(QUALITY_TARGET_FRACTION * best.quality)
    router_aiq = aiq(s.router, s.max_cost)
    oracle_aiq = aiq(s.oracle_hull, s.max_cost)
    curve = s.curve
    return {
        "curve": [
            {"cost_weight": _finite(w), "cost": float(c), "quality": float(q)}
            for w, c, q in zip(curve.cost_weights, curve.costs, curve.qualities, strict=True)
        ],
        "hull": _points(s.router),
        "aiq": router_aiq,
        "aiq_vs_oracle": router_aiq / oracle_aiq if oracle_aiq > 0.0 else None,
        "max_quality": s.router.max_quality,
        "oracle_gap": s.oracle.quality - s.router.max_quality,
        "cost_at_95pct_quality": cost_at_target,
        "cost_saving_at_95pct_quality": cost_saving(s.router, best, QUALITY_TARGET_FRACTION),
        "quality_at_best_model_cost": s.router.quality_at(best.cost),
    }


def _best_section(data: RoutingData, s: _Scored) -> Report:
    best = s.singles[s.best]
    return {
        "model": data.models[s.best],
        **_point(best),
        "target_quality": QUALITY_TARGET_FRACTION * best.quality,
    }


def _random_section(data: RoutingData, s: _Scored) -> Report:
    mix = random_at_cost(s.singles[s.cheapest], s.singles[s.best], s.decisions.cost)
    return {
        "best_model": data.models[s.best],
        "cheapest_model": data.models[s.cheapest],
        "target_cost": s.decisions.cost,
        "p_best": mix.p_best,
        "cost": mix.cost,
        "quality": mix.quality,
    }


def _two_model_section(data: RoutingData, s: _Scored) -> Report | None:
    if len(data.models) != 2:
        return None
    strong, weak = s.best, 1 - s.best
    switch = switch_cost_weights(
        data.pred_quality[:, strong],
        data.pred_quality[:, weak],
        data.pred_cost[:, strong],
        data.pred_cost[:, weak],
    )
    curve = pgr_curve(data.quality[:, strong], data.quality[:, weak], switch)
    q_strong, q_weak = s.singles[strong].quality, s.singles[weak].quality
    share = float(np.mean(data.chosen == strong))
    cpt = {f"cpt_{round(level * 100)}": None if curve is None else curve.cpt(level) for level in CPT_LEVELS}
    return {
        "strong": data.models[strong],
        "weak": data.models[weak],
        "strong_quality": q_strong,
        "weak_quality": q_weak,
        "pgr_curve": []
        if curve is None
        else [{"share": float(a), "pgr": float(b)} for a, b in zip(curve.shares, curve.pgr, strict=True)],
        "apgr": None if curve is None else curve.apgr(),
        **cpt,
        "decision_strong_share": share,
        "decision_pgr": pgr_of(s.decisions.quality, q_strong, q_weak),
        "curve_pgr_at_decision_share": None if curve is None else curve.at(share),
    }


def _summary(report: Report, prompts: int) -> Report:
    """The headline numbers, copied from the sections so that each is computed once."""
    router, best, two_model = report["router"], report["best_single_model"], report["two_model"]
    return {
        "prompts_evaluated": prompts,
        "router_aiq": router["aiq"],
        "zero_router_aiq": report["zero_router"]["aiq"],
        "oracle_aiq": report["oracle"]["aiq"],
        "decision_quality": report["decisions"]["quality"],
        "decision_cost": report["decisions"]["cost"],
        "best_single_model": best["model"],
        "best_single_quality": best["quality"],
        "best_single_cost": best["cost"],
        "cost_saving_at_95pct_quality": router["cost_saving_at_95pct_quality"],
        "quality_at_best_model_cost": router["quality_at_best_model_cost"],
        "oracle_gap": router["oracle_gap"],
        "apgr": None if two_model is None else two_model["apgr"],
    }


def _point(point: OperatingPoint) -> Report:
    return {"cost": point.cost, "quality": point.quality}


def _points(hull: Hull) -> list[Report]:
    return [{"cost": c, "quality": q} for c, q in hull.points()]


def _share(choice: IntArray, models: tuple[str, ...]) -> dict[str, float]:
    counts = np.bincount(choice, minlength=len(models))
    return {model: float(count) / choice.size for model, count in zip(models, counts, strict=True)}


def _finite(value: float) -> float | None:
    """JSON has no infinity: λ = +inf (always the cheapest) is written as null."""
    return float(value) if math.isfinite(value) else None
