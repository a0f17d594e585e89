"""Non-decreasing convex hull, look-ups and AIQ on hand-computed cases (docs/metrics.md §2, §3, §5, §6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routers.metrics import aiq, upper_hull

# docs/metrics.md §2: A(1, .4) B(2, .5) C(3, .8) D(4, .7) E(5, .9) F(6, .9) A'(1, .3)
EXAMPLE_COSTS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0]
EXAMPLE_QUALITIES = [0.4, 0.5, 0.8, 0.7, 0.9, 0.9, 0.3]


def test_hull_keeps_the_upper_envelope_from_cheapest_to_best() -> None:
    hull = upper_hull(EXAMPLE_COSTS, EXAMPLE_QUALITIES)
    # A' shares A's cost with a lower quality: dropped.
    # B is under the chord A–C: at cost 2 the chord gives .4 + (.8 − .4)·(2 − 1)/(3 − 1) = .6 > .5.
    # C is above the chord A–E: .4 + (.9 − .4)·(3 − 1)/(5 − 1) = .65 < .8, so C is a vertex.
    # D (4, .7) is costlier and worse than C: under the chord C–E (.85 at cost 4).
    # F (6, .9) has E's quality at a higher cost: past the best point, dominated.
    assert hull.points() == [(1.0, 0.4), (3.0, 0.8), (5.0, 0.9)]
    assert hull.min_cost == 1.0
    assert hull.max_quality == 0.9


def test_hull_look_ups() -> None:
    hull = upper_hull(EXAMPLE_COSTS, EXAMPLE_QUALITIES)
    assert hull.quality_at(2.0) == pytest.approx(0.6)  # .4 + .2·1 (slope A–C = .4/2 = .2)
    assert hull.quality_at(4.0) == pytest.approx(0.85)  # .8 + .05·1 (slope C–E = .1/2 = .05)
    assert hull.quality_at(7.0) == pytest.approx(0.9)  # flat after the best point
    assert hull.quality_at(0.5) is None  # cheaper than the cheapest operating point
    assert hull.cost_to_reach(0.7) == pytest.approx(2.5)  # 1 + (.7 − .4)/.2
    assert hull.cost_to_reach(0.3) == pytest.approx(1.0)  # already reached at the cheapest point
    assert hull.cost_to_reach(0.95) is None  # above the best quality


def test_cost_saving_and_quality_at_best_cost_on_a_tiny_hull() -> None:
    # Router hull (1, .5)–(3, .9); best single model at cost 4 with quality .9 (docs §5, §6).
    hull = upper_hull([1.0, 3.0], [0.5, 0.9])
    target = 0.95 * 0.9  # .855
    cost = hull.cost_to_reach(target)
    # 1 + (.855 − .5)/(.4/2) = 1 + .355/.2 = 2.775; saving = 1 − 2.775/4 = .30625
    assert cost == pytest.approx(2.775)
    assert cost is not None and 1.0 - cost / 4.0 == pytest.approx(0.30625)
    assert hull.quality_at(4.0) == pytest.approx(0.9)  # flat past (3, .9)
    assert hull.quality_at(2.0) == pytest.approx(0.7)  # .5 + .2·1
    assert hull.cost_to_reach(0.95 * 1.0) is None  # a best model of quality 1 sets an unreachable .95


def test_aiq_two_points() -> None:
    hull = upper_hull([1.0, 3.0], [0.5, 0.9])
    # 0..1: nothing; 1..3: (.5 + .9)/2·2 = 1.4; 3..4: .9·1 = .9; (1.4 + .9)/4 = .575
    assert aiq(hull, 4.0) == pytest.approx(0.575)


def test_aiq_three_points() -> None:
    hull = upper_hull([0.0, 2.0, 4.0], [0.3, 0.7, 0.8])
    # 0..2: (.3 + .7)/2·2 = 1.0; 2..4: (.7 + .8)/2·2 = 1.5; 2.5/4 = .625
    assert aiq(hull, 4.0) == pytest.approx(0.625)


def test_aiq_of_the_example_hull() -> None:
    hull = upper_hull(EXAMPLE_COSTS, EXAMPLE_QUALITIES)
    # 1..3: (.4 + .8)/2·2 = 1.2; 3..5: (.8 + .9)/2·2 = 1.7; 5..6: .9; 3.8/6
    assert aiq(hull, 6.0) == pytest.approx(3.8 / 6.0)


def test_aiq_extends_flat_to_max_cost() -> None:
    point = upper_hull([2.0], [0.6])
    assert aiq(point, 5.0) == pytest.approx(0.36)  # .6·(5 − 2)/5
    assert aiq(point, 2.0) == 0.0  # no width between its cost and max_cost
    segment = upper_hull([1.0, 3.0], [0.5, 0.9])
    assert aiq(segment, 3.0) == pytest.approx(1.4 / 3.0)  # no extension
    assert aiq(segment, 5.0) == pytest.approx((1.4 + 0.9 * 2.0) / 5.0)  # 3.2/5 = .64
    assert aiq(segment, 2.0) == pytest.approx((0.5 + 0.7) / 2.0 / 2.0)  # cut at 2: (.5 + .7)/2·1 / 2 = .3


def test_aiq_below_the_cheapest_point_and_free_models() -> None:
    assert aiq(upper_hull([3.0], [0.9]), 1.0) == 0.0
    assert aiq(upper_hull([0.0, 0.0], [0.2, 0.7]), 0.0) == 0.7  # all free: the quality at cost 0
    with pytest.raises(ValueError, match="max_cost"):
        aiq(upper_hull([1.0], [0.5]), math.inf)


def test_hull_rejects_bad_points() -> None:
    with pytest.raises(ValueError, match="at least one point"):
        upper_hull([], [])
    with pytest.raises(ValueError, match="finite"):
        upper_hull([1.0, np.nan], [0.5, 0.6])
