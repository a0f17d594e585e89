"""The λ grid and the cost–quality curve of a λ sweep (docs/metrics.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

from routers.metrics import cost_scale, cost_weight_grid, sweep


def test_cost_scale_is_the_median_positive_spread() -> None:
    pred_cost = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]])
    # spreads max − min per prompt: 2, 0, 4; the positive ones are 2 and 4, median 3
    assert cost_scale(pred_cost) == pytest.approx(3.0)
    # no spread anywhere: median positive cost of [2, 2, 4, 4, 0, 0] → median(2, 2, 4, 4) = 3
    assert cost_scale(np.array([[2.0, 2.0], [4.0, 4.0], [0.0, 0.0]])) == pytest.approx(3.0)
    assert cost_scale(np.zeros((2, 2))) == 1.0


def test_grid_spans_quality_to_cost_dominance_around_the_cost_scale() -> None:
    grid = cost_weight_grid(np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]]), decades=3, steps_per_decade=10)
    # 0, then 10^(−3 … 3 in steps of .1) / 3 (61 values), then +inf
    assert grid.size == 63
    assert grid[0] == 0.0
    assert np.isposinf(grid[-1])
    assert grid[1] == pytest.approx(1e-3 / 3.0)
    assert grid[31] == pytest.approx(1.0 / 3.0)
    assert grid[-2] == pytest.approx(1e3 / 3.0)
    assert np.all(np.diff(grid) > 0)


def test_sweep_scores_the_chosen_models_on_true_outcomes() -> None:
    quality = np.array([[0.9, 0.6], [0.8, 0.7]])
    cost = np.array([[3.0, 1.0], [3.0, 1.0]])
    pred_quality = np.array([[0.9, 0.5], [0.75, 0.7]])
    pred_cost = cost
    # Switch λ (q̂0 − q̂1)/(ĉ0 − ĉ1): prompt 1 at .4/2 = .2, prompt 2 at .05/2 = .025.
    curve = sweep(quality, cost, pred_quality, pred_cost, np.array([0.0, 0.1, 0.2, np.inf]))
    # λ = 0: both to model 0 → cost 3, quality (.9 + .8)/2 = .85
    # λ = .1: prompt 1 to model 0, prompt 2 to model 1 → cost (3 + 1)/2 = 2, quality (.9 + .7)/2 = .8
    # λ = .2: prompt 1 ties (.9 − .6 = .5 − .2 = .3) → the cheaper model 1 → cost 1, quality (.6 + .7)/2
    # λ = inf: the cheapest everywhere → the same point (1, .65)
    assert curve.costs.tolist() == pytest.approx([3.0, 2.0, 1.0, 1.0])
    assert curve.qualities.tolist() == pytest.approx([0.85, 0.8, 0.65, 0.65])
    assert curve.cost_weights[1] == 0.1
