"""Routing evaluation metrics: cost–quality curves, hulls and AIQ, PGR/APGR/CPT, baselines, the report.

Pure functions of outcome and prediction matrices (docs/metrics.md defines each); no file or network I/O.
Off-policy estimators (IPS, SNIPS, doubly robust) judge a policy on logged bandit feedback.
"""

from routers.metrics.baselines import (
    OperatingPoint,
    RandomMix,
    best_single_model,
    cheapest_single_model,
    cost_saving,
    gap_closed,
    oracle_choice,
    oracle_frontier,
    random_at_cost,
    single_model_points,
    task_oracle_frontier,
    zero_router,
)
from routers.metrics.frontier import Hull, aiq, upper_hull
from routers.metrics.off_policy import (
    OffPolicyEstimate,
    doubly_robust,
    doubly_robust_advantage,
    evaluate_policy,
    ips,
    one_hot,
    snips,
)
from routers.metrics.report import QUALITY_TARGET_FRACTION, Report, RoutingData, routing_report
from routers.metrics.sweep import Curve, cost_scale, cost_weight_grid, outcome_of, sweep
from routers.metrics.two_model import (
    APGR_SHARES,
    CPT_LEVELS,
    PgrCurve,
    pgr_curve,
    pgr_of,
    random_pgr_curve,
    switch_cost_weights,
)

__all__ = [
    "APGR_SHARES",
    "CPT_LEVELS",
    "QUALITY_TARGET_FRACTION",
    "Curve",
    "Hull",
    "OffPolicyEstimate",
    "OperatingPoint",
    "PgrCurve",
    "RandomMix",
    "Report",
    "RoutingData",
    "aiq",
    "best_single_model",
    "cheapest_single_model",
    "cost_saving",
    "cost_scale",
    "cost_weight_grid",
    "doubly_robust",
    "doubly_robust_advantage",
    "evaluate_policy",
    "gap_closed",
    "ips",
    "one_hot",
    "oracle_choice",
    "oracle_frontier",
    "outcome_of",
    "pgr_curve",
    "pgr_of",
    "random_at_cost",
    "random_pgr_curve",
    "routing_report",
    "single_model_points",
    "snips",
    "sweep",
    "switch_cost_weights",
    "task_oracle_frontier",
    "upper_hull",
    "zero_router",
]
