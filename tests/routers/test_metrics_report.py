"""The assembled routing report on the two-model worked example of docs/metrics.md, and on three models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routers.metrics import RoutingData, routing_report

# docs/metrics.md worked example: strong costs .02, weak .01 on every prompt.
TRUE_QUALITY = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
TRUE_COST = np.tile([0.02, 0.01], (4, 1))
PRED_QUALITY = np.column_stack([0.5 + np.array([0.4, 0.3, 0.1, 0.2]), np.full(4, 0.5)])
PRED_COST = np.tile([2.0, 1.0], (4, 1))
CHOSEN = np.array([0, 0, 1, 1])  # what λ = .25 picks: strong where λ* > .25 (p1, p2)


def _example() -> RoutingData:
    return RoutingData(("strong", "weak"), TRUE_QUALITY, TRUE_COST, PRED_QUALITY, PRED_COST, CHOSEN)


def test_two_model_report_numbers() -> None:
    report = routing_report(_example())
    json.dumps(report, allow_nan=False)  # JSON-able, no infinities
    assert report["max_cost"] == pytest.approx(0.02)
    router = report["router"]
    # sweep, k strong prompts in λ* order: (.01, .25), (.0125, .5), (.015, .5), (.0175, .5), (.02, .75)
    # hull: (.0125, .5) is above the chord (.01, .25)–(.02, .75) (.375 there); the others are under
    assert router["hull"] == [
        {"cost": pytest.approx(0.01), "quality": pytest.approx(0.25)},
        {"cost": pytest.approx(0.0125), "quality": pytest.approx(0.5)},
        {"cost": pytest.approx(0.02), "quality": pytest.approx(0.75)},
    ]
    # AIQ: [(.25 + .5)/2·.0025 + (.5 + .75)/2·.0075]/.02 = (.0009375 + .0046875)/.02 = .28125
    assert router["aiq"] == pytest.approx(0.28125)
    # target .95·.75 = .7125 on (.0125, .5)–(.02, .75): .0125 + (.2125/.25)·.0075 = .018875
    assert router["cost_at_95pct_quality"] == pytest.approx(0.018875)
    assert router["cost_saving_at_95pct_quality"] == pytest.approx(1 - 0.018875 / 0.02)  # .05625
    assert router["quality_at_best_model_cost"] == pytest.approx(0.75)
    assert router["curve"][0]["cost_weight"] == 0.0
    assert router["curve"][-1] == {"cost_weight": None, "cost": pytest.approx(0.01), "quality": 0.25}


def test_two_model_report_baselines() -> None:
    report = routing_report(_example())
    assert report["best_single_model"]["model"] == "strong"
    assert report["best_single_model"]["target_quality"] == pytest.approx(0.7125)
    assert report["single_models"]["weak"] == {"cost": pytest.approx(0.01), "quality": 0.25}
    # Zero router: segment (.01, .25)–(.02, .75): (.25 + .75)/2·.01/.02 = .25
    assert report["zero_router"]["aiq"] == pytest.approx(0.25)
    # oracle: p1 strong, p2 weak (tie → cheaper), p3 strong, p4 weak (tie) → quality .75, cost .015
    oracle = report["oracle"]
    assert (oracle["quality"], oracle["cost"]) == (pytest.approx(0.75), pytest.approx(0.015))
    assert oracle["share"] == {"strong": 0.5, "weak": 0.5}
    # oracle frontier (.01, .25)–(.015, .75): [(.25 + .75)/2·.005 + .75·.005]/.02 = .3125
    assert oracle["aiq"] == pytest.approx(0.3125)
    assert report["router"]["aiq_vs_oracle"] == pytest.approx(0.28125 / 0.3125)  # .9
    assert report["router"]["oracle_gap"] == pytest.approx(0.0)  # the hull reaches .75 too
    # decisions: (.02 + .02 + .01 + .01)/4 = .015, quality (1 + 1 + 0 + 0)/4 = .5
    assert report["decisions"] == {
        "cost": pytest.approx(0.015),
        "quality": 0.5,
        "share": {"strong": 0.5, "weak": 0.5},
    }
    # random at cost .015: p = (.015 − .01)/(.02 − .01) = .5 → quality .25 + .5·.5 = .5
    assert report["random"]["p_best"] == pytest.approx(0.5)
    assert report["random"]["quality"] == pytest.approx(0.5)


def test_two_model_section() -> None:
    two = routing_report(_example())["two_model"]
    assert (two["strong"], two["weak"]) == ("strong", "weak")
    assert (two["strong_quality"], two["weak_quality"]) == (0.75, 0.25)
    assert two["apgr"] == pytest.approx(0.55)
    assert two["cpt_50"] == pytest.approx(0.25)
    assert two["cpt_80"] == pytest.approx(0.9)
    assert two["decision_strong_share"] == 0.5
    assert two["decision_pgr"] == pytest.approx(0.5)  # (.5 − .25)/(.75 − .25)
    assert two["curve_pgr_at_decision_share"] == pytest.approx(0.5)


def test_three_models_have_no_two_model_section() -> None:
    quality = np.array([[0.2, 0.6, 0.9], [0.4, 0.6, 0.7]])
    cost = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    data = RoutingData(("a", "b", "c"), quality, cost, quality, cost, np.array([2, 1]))
    report = routing_report(data)
    assert report["two_model"] is None
    assert report["summary"]["apgr"] is None
    # singles: a (1, .3), b (2, .6), c (4, .8); best c
    assert report["best_single_model"]["model"] == "c"
    assert report["decisions"]["share"] == {"a": 0.0, "b": 0.5, "c": 0.5}
    # Perfect predictions. Per-prompt switches: p1 c→b at λ .15 (.3/2), b→a at .4; p2 c→b at .05, b→a at .2.
    # The grid (10^(k/10)/3) falls in every gap, so the sweep visits (c,c) (4, .8), (c,b) (3, .75),
    # (b,b) (2, .6), (b,a) (1.5, .5), (a,a) (1, .3); slopes .4, .2, .15, .05 fall, so all are vertices.
    router = report["router"]
    assert router["hull"] == [
        {"cost": pytest.approx(c), "quality": pytest.approx(q)}
        for c, q in [(1.0, 0.3), (1.5, 0.5), (2.0, 0.6), (3.0, 0.75), (4.0, 0.8)]
    ]
    # AIQ: [(.3 + .5)/2·.5 + (.5 + .6)/2·.5 + (.6 + .75)/2·1 + (.75 + .8)/2·1]/4 = 1.925/4
    assert router["aiq"] == pytest.approx(0.48125)
    # the oracle frontier is the same polyline: the router is as good as perfect knowledge
    assert router["aiq_vs_oracle"] == pytest.approx(1.0)
    assert router["oracle_gap"] == pytest.approx(0.0)
    # target .95·.8 = .76 on (3, .75)–(4, .8): 3 + .01/.05 = 3.2 → saving 1 − 3.2/4 = .2
    assert router["cost_at_95pct_quality"] == pytest.approx(3.2)
    assert router["cost_saving_at_95pct_quality"] == pytest.approx(0.2)
    assert router["quality_at_best_model_cost"] == pytest.approx(0.8)
    # Zero router: a (1, .3), b (2, .6), c (4, .8), slopes .3 then .1: (.45 + 1.4)/4 = .4625
    assert report["zero_router"]["aiq"] == pytest.approx(0.4625)
    # decisions (c, b): cost 3, quality .75; random at cost 3: p = (3 − 1)/(4 − 1) = 2/3 → .3 + 2/3·.5
    assert report["random"]["p_best"] == pytest.approx(2.0 / 3.0)
    assert report["random"]["quality"] == pytest.approx(0.3 + 0.5 * 2.0 / 3.0)


def test_routing_data_rejects_unknown_outcomes() -> None:
    quality = np.array([[0.2, np.nan]])
    with pytest.raises(ValueError, match="finite"):
        RoutingData(("a", "b"), quality, np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)), np.array([0]))
    with pytest.raises(ValueError, match="shape"):
        RoutingData(("a", "b"), np.ones((1, 3)), np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)), np.array([0]))
