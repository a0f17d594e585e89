"""Properties of the hull, AIQ and the oracle frontier on random inputs (hypothesis)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from routers.metrics import aiq, oracle_frontier, upper_hull

TOLERANCE = 1e-9
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None)

# Costs and qualities on a 1/1000 lattice keep cross products exact enough to test concavity strictly.
costs_st = st.integers(0, 5000).map(lambda i: i / 1000)
qualities_st = st.integers(0, 1000).map(lambda i: i / 1000)
points_st = st.lists(st.tuples(costs_st, qualities_st), min_size=1, max_size=30)


@PROPERTY_SETTINGS
@given(points_st)
def test_hull_is_non_decreasing_concave_and_dominates_every_point(points: list[tuple[float, float]]) -> None:
    costs, qualities = (np.array(column) for column in zip(*points, strict=True))
    hull = upper_hull(costs, qualities)
    assert np.all(np.diff(hull.costs) > 0)
    assert np.all(np.diff(hull.qualities) > 0)
    slopes = np.diff(hull.qualities) / np.diff(hull.costs)
    assert np.all(np.diff(slopes) <= TOLERANCE * np.maximum(1.0, np.abs(slopes[1:])))
    assert hull.min_cost == costs.min()
    assert hull.max_quality == qualities.max()
    for cost, quality in points:
        at = hull.quality_at(cost)
        assert at is not None and at >= quality - TOLERANCE


@PROPERTY_SETTINGS
@given(points_st, st.integers(0, 5000).map(lambda i: i / 1000))
def test_aiq_is_at_most_the_best_quality(points: list[tuple[float, float]], extra: float) -> None:
    costs, qualities = (np.array(column) for column in zip(*points, strict=True))
    hull = upper_hull(costs, qualities)
    max_cost = float(costs.max()) + extra
    value = aiq(hull, max_cost)
    assert 0.0 <= value <= hull.max_quality + TOLERANCE


@st.composite
def outcome_matrices(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    quality = np.array(draw(st.lists(qualities_st, min_size=n * m, max_size=n * m))).reshape(n, m)
    cost = np.array(draw(st.lists(costs_st, min_size=n * m, max_size=n * m))).reshape(n, m)
    return quality, cost


@PROPERTY_SETTINGS
@given(outcome_matrices())
def test_oracle_frontier_dominates_every_assignment(matrices: tuple[np.ndarray, np.ndarray]) -> None:
    quality, cost = matrices
    n, m = quality.shape
    frontier = oracle_frontier(quality, cost)
    rows = np.arange(n)
    assignments = [np.array(a) for a in itertools.product(range(m), repeat=n)]
    points = [(cost[rows, a].mean(), quality[rows, a].mean()) for a in assignments]
    for point_cost, point_quality in points:
        at = frontier.quality_at(point_cost)
        assert at is not None and at >= point_quality - TOLERANCE
    # every frontier vertex is itself reachable by mixing assignments: it lies on their hull
    every = upper_hull([p[0] for p in points], [p[1] for p in points])
    for vertex_cost, vertex_quality in frontier.points():
        at = every.quality_at(vertex_cost)
        assert at is not None and abs(at - vertex_quality) <= TOLERANCE
