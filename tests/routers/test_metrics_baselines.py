"""Baselines on hand-computed cases: single models, random at matched cost, Zero router, oracle (§7, §8)."""

from __future__ import annotations

import numpy as np
import pytest

from routers.metrics import (
    OperatingPoint,
    aiq,
    best_single_model,
    cheapest_single_model,
    oracle_choice,
    oracle_frontier,
    outcome_of,
    random_at_cost,
    single_model_points,
    zero_router,
)

# docs/metrics.md §8: cheap (1, .5), mid (2, .6), best (4, .9)
SINGLES = [OperatingPoint(1.0, 0.5), OperatingPoint(2.0, 0.6), OperatingPoint(4.0, 0.9)]


def test_single_model_points_are_column_means() -> None:
    points = single_model_points(np.array([[1.0, 0.0], [0.5, 1.0]]), np.array([[2.0, 1.0], [4.0, 1.0]]))
    # model 0: cost (2 + 4)/2 = 3, quality (1 + .5)/2 = .75; model 1: cost 1, quality .5
    assert points == [OperatingPoint(3.0, 0.75), OperatingPoint(1.0, 0.5)]


def test_best_and_cheapest_single_model_tie_breaks() -> None:
    assert best_single_model(SINGLES) == 2
    # equal quality .9: the cheaper (cost 3) wins over cost 4
    assert best_single_model([OperatingPoint(4.0, 0.9), OperatingPoint(3.0, 0.9)]) == 1
    assert cheapest_single_model(SINGLES) == 0
    # equal cost 1: the better (.7) wins over .5
    assert cheapest_single_model([OperatingPoint(1.0, 0.5), OperatingPoint(1.0, 0.7)]) == 1


def test_random_at_matched_cost() -> None:
    cheap, best = SINGLES[0], SINGLES[2]
    mix = random_at_cost(cheap, best, 2.5)
    # p = (2.5 − 1)/(4 − 1) = .5; quality .5 + .5·(.9 − .5) = .7
    assert mix.p_best == pytest.approx(0.5)
    assert mix.cost == pytest.approx(2.5)
    assert mix.quality == pytest.approx(0.7)
    above = random_at_cost(cheap, best, 5.0)  # costlier than the best model: p clipped to 1
    assert (above.p_best, above.cost, above.quality) == (1.0, 4.0, 0.9)
    below = random_at_cost(cheap, best, 0.5)  # cheaper than the cheapest: p clipped to 0
    assert (below.p_best, below.cost, below.quality) == (0.0, 1.0, 0.5)
    same = random_at_cost(best, best, 2.0)  # the best model is also the cheapest
    assert (same.p_best, same.cost, same.quality) == (1.0, 4.0, 0.9)


def test_zero_router_is_the_hull_of_single_models() -> None:
    hull = zero_router(SINGLES)
    # mid (2, .6) is under the chord cheap–best: .5 + (.9 − .5)·(2 − 1)/(4 − 1) = .633… > .6
    assert hull.points() == [(1.0, 0.5), (4.0, 0.9)]
    # 0..1: 0; 1..4: (.5 + .9)/2·3 = 2.1; 2.1/4 = .525
    assert aiq(hull, 4.0) == pytest.approx(0.525)


def test_oracle_takes_the_cheapest_of_the_best() -> None:
    quality = np.array([[0.5, 1.0, 1.0], [0.7, 0.7, 0.2], [0.4, 0.4, 0.1]])
    cost = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [2.0, 2.0, 1.0]])
    choice = oracle_choice(quality, cost)
    # p1: models 1 and 2 tie at 1.0 → model 1 (cost 2 < 3); p2: models 0 and 1 tie at .7 → model 1
    # (cost 1 < 3); p3: models 0 and 1 tie at .4 with the same cost 2 → the earlier, model 0
    assert choice.tolist() == [1, 1, 0]
    point_cost, point_quality = outcome_of(choice, quality, cost)
    assert point_cost == pytest.approx(5.0 / 3.0)  # (2 + 1 + 2)/3
    assert point_quality == pytest.approx(0.7)  # (1 + .7 + .4)/3


def test_oracle_frontier_merges_per_prompt_segments_by_slope() -> None:
    # p1: a (1, 0), b (3, 1) → slope .5; p2: a (1, .5), b (2, .9) → slope .4
    quality = np.array([[0.0, 1.0], [0.5, 0.9]])
    cost = np.array([[1.0, 3.0], [1.0, 2.0]])
    frontier = oracle_frontier(quality, cost)
    # start (all a): ((1 + 1)/2, (0 + .5)/2) = (1, .25); + p1's step (2, 1)/2 → (2, .75);
    # + p2's step (1, .4)/2 → (2.5, .95) = the oracle point (b, b)
    assert frontier.costs.tolist() == pytest.approx([1.0, 2.0, 2.5])
    assert frontier.qualities.tolist() == pytest.approx([0.25, 0.75, 0.95])
    # the other deterministic assignment (a, b) = (1.5, .45) lies under it: .25 + .5·.5 = .5
    assert frontier.quality_at(1.5) == pytest.approx(0.5)
