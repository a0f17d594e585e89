"""PGR, APGR and CPT for two-model routing on hand-computed cases (docs/metrics.md §4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routers.metrics import PgrCurve, pgr_curve, pgr_of, switch_cost_weights

# docs/metrics.md §4: four prompts, strong s and weak w.
QUALITY_STRONG = np.array([1.0, 1.0, 1.0, 0.0])
QUALITY_WEAK = np.array([0.0, 1.0, 0.0, 0.0])
PRED_GAP = np.array([0.4, 0.3, 0.1, 0.2])  # q̂s − q̂w with ĉs − ĉw = 2 − 1 = 1


def _example_curve() -> PgrCurve:
    switch = switch_cost_weights(0.5 + PRED_GAP, np.full(4, 0.5), np.full(4, 2.0), np.full(4, 1.0))
    assert switch == pytest.approx(PRED_GAP)  # λ* = (q̂s − q̂w)/(ĉs − ĉw) = gap/1
    curve = pgr_curve(QUALITY_STRONG, QUALITY_WEAK, switch)
    assert curve is not None
    return curve


def test_switch_cost_weight_cases() -> None:
    switch = switch_cost_weights(
        np.array([0.9, 0.9, 0.5, 0.4, 0.3]),
        np.array([0.5, 0.5, 0.5, 0.5, 0.5]),
        np.array([2.0, 1.0, 1.0, 1.0, 3.0]),
        np.array([1.0, 1.0, 1.0, 2.0, 1.0]),
    )
    # .4/1; strong not costlier and better → +inf; equal → +inf; strong cheaper but worse → −inf;
    # strong costlier and worse → −.2/2 = −.1 (weak at every λ ≥ 0)
    assert switch[0] == pytest.approx(0.4)
    assert np.isposinf(switch[1]) and np.isposinf(switch[2])
    assert np.isneginf(switch[3])
    assert switch[4] == pytest.approx(-0.1)


def test_pgr_curve_on_four_prompts() -> None:
    curve = _example_curve()
    # Order by λ*: p1 (.4), p2 (.3), p4 (.2), p3 (.1); gains Qs − Qw in that order: 1, 0, 0, 1 (total 2).
    # Q(k)·4 = 1 (all weak), 2, 2, 2, 3 → PGR = (Q − .25)/(.75 − .25) = 0, .5, .5, .5, 1
    assert curve.shares.tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert curve.pgr.tolist() == pytest.approx([0.0, 0.5, 0.5, 0.5, 1.0])


def test_apgr_on_four_prompts() -> None:
    curve = _example_curve()
    # PGR at 10%…100%: .2, .4 (on 0→.5 over 0→.25), .5 ×5 (30%…70%), .6, .8 (on .5→1 over .75→1), 1
    # sum = .2 + .4 + 2.5 + .6 + .8 + 1 = 5.5 → APGR = .55
    assert curve.at(0.1) == pytest.approx(0.2)
    assert curve.at(0.9) == pytest.approx(0.8)
    assert curve.apgr() == pytest.approx(0.55)


def test_cpt_on_four_prompts() -> None:
    curve = _example_curve()
    assert curve.cpt(0.5) == pytest.approx(0.25)  # PGR reaches .5 at the first breakpoint
    # .8 is reached between (.75, .5) and (1, 1): .75 + (.8 − .5)/(1 − .5)·.25 = .9
    assert curve.cpt(0.8) == pytest.approx(0.9)
    assert curve.cpt(0.0) == 0.0
    assert PgrCurve(shares=np.array([0.0, 1.0]), pgr=np.array([0.0, 0.6])).cpt(0.8) is None


def test_a_bad_ordering_goes_negative_first() -> None:
    # Gains in the router's order: −1, 1, 1 (total 1) → PGR 0, −1, 0, 1 at shares 0, 1/3, 2/3, 1.
    curve = pgr_curve(np.array([0.0, 1.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([3.0, 2.0, 1.0]))
    assert curve is not None
    assert curve.pgr.tolist() == pytest.approx([0.0, -1.0, 0.0, 1.0])
    # .5 first reached between (2/3, 0) and (1, 1): 2/3 + .5·1/3 = 5/6
    assert curve.cpt(0.5) == pytest.approx(5.0 / 6.0)
    # PGR at 10%…100%: −.3, −.6, −.9, −.8, −.5, −.2, .1, .4, .7, 1 → sum −1.1 → APGR −.11
    assert curve.apgr() == pytest.approx(-0.11)


def test_tied_switch_weights_interpolate_within_the_group() -> None:
    # Two prompts the router cannot tell apart: sending one at random gains (1 + 0)/2 → PGR(.5) = .5.
    tied = pgr_curve(np.array([1.0, 1.0]), np.array([0.0, 1.0]), np.array([0.3, 0.3]))
    assert tied is not None
    assert tied.shares.tolist() == [0.0, 1.0]
    assert tied.at(0.5) == pytest.approx(0.5)
    # Untied, the better prompt first: PGR(.5) = 1.
    ordered = pgr_curve(np.array([1.0, 1.0]), np.array([0.0, 1.0]), np.array([0.4, 0.3]))
    assert ordered is not None
    assert ordered.at(0.5) == pytest.approx(1.0)
    both_infinite = pgr_curve(np.array([1.0, 1.0]), np.array([0.0, 1.0]), np.array([math.inf, math.inf]))
    assert both_infinite is not None and both_infinite.at(0.5) == pytest.approx(0.5)


def test_pgr_is_undefined_when_strong_and_weak_tie() -> None:
    assert pgr_curve(np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.2, 0.1])) is None
    assert pgr_of(0.6, 0.5, 0.5) is None
    assert pgr_of(0.5, 0.75, 0.25) == pytest.approx(0.5)  # (.5 − .25)/(.75 − .25)
