"""Gap closed, the dataset (task-only) oracle, cost saving and random two-model routing on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from routers.metrics import (
    APGR_SHARES,
    Hull,
    OperatingPoint,
    aiq,
    cost_saving,
    gap_closed,
    oracle_frontier,
    pgr_curve,
    random_pgr_curve,
    single_model_points,
    task_oracle_frontier,
    zero_router,
)

# Four prompts, two tasks (a: prompts 0–1, b: prompts 2–3); models cheap (cost 1) and strong (cost 3).
QUALITY = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
COST = np.tile([1.0, 3.0], (4, 1))
TASKS = np.array([0, 0, 1, 1])
MAX_COST = 3.0


def test_task_oracle_frontier_by_hand() -> None:
    hull = task_oracle_frontier(QUALITY, COST, TASKS)
    # Task a: cheap (1, .5), strong (3, 1); task b: cheap (1, 1) dominates strong (3, .5).
    # All cheap: cost 1, quality (2·.5 + 2·1)/4 = .75; task a to strong: cost (2·3 + 2·1)/4 = 2, quality 1.
    np.testing.assert_allclose(hull.points(), [(1.0, 0.75), (2.0, 1.0)])
    # AIQ over 0..3: trapezoid 1→2 = (.75 + 1)/2 = .875, flat 2→3 = 1; (.875 + 1)/3 = .625
    assert aiq(hull, MAX_COST) == pytest.approx(0.625)


def test_task_oracle_lies_between_the_zero_router_and_the_per_prompt_oracle() -> None:
    zero = aiq(zero_router(single_model_points(QUALITY, COST)), MAX_COST)
    task = aiq(task_oracle_frontier(QUALITY, COST, TASKS), MAX_COST)
    full = aiq(oracle_frontier(QUALITY, COST), MAX_COST)
    # Zero: cheap (1, .75) dominates strong (3, .75) → .75·2/3 = .5. Oracle: prompt 0 to strong only, so
    # (1, .75) → (1.5, 1): (.4375 + 1.5)/3 = 31/48. Gap closed by the task oracle: (5/8 − 1/2)/(31/48 − 1/2) = 6/7.
    assert (zero, full) == pytest.approx((0.5, 31 / 48))
    assert zero < task < full
    assert gap_closed(task, zero, full) == pytest.approx(6 / 7)


def test_one_task_is_the_zero_router_and_one_task_per_prompt_is_the_oracle() -> None:
    single_task = task_oracle_frontier(QUALITY, COST, np.zeros(4, np.intp))
    zero = zero_router(single_model_points(QUALITY, COST))
    np.testing.assert_allclose(single_task.points(), zero.points())
    per_prompt = task_oracle_frontier(QUALITY, COST, np.arange(4))
    np.testing.assert_allclose(per_prompt.points(), oracle_frontier(QUALITY, COST).points())


def test_task_oracle_needs_one_group_per_prompt() -> None:
    with pytest.raises(ValueError, match="one group per prompt"):
        task_oracle_frontier(QUALITY, COST, np.array([0, 1]))


def test_gap_closed() -> None:
    # The figures: best family .8419, Zero router .8094, oracle .9587 → .0325/.1493 ≈ 21.8%
    assert gap_closed(0.8419, 0.8094, 0.9587) == pytest.approx(0.0325 / 0.1493)
    assert gap_closed(0.5, 0.5, 0.9) == 0.0
    assert gap_closed(0.9, 0.5, 0.9) == 1.0
    assert gap_closed(0.4, 0.5, 0.9) == pytest.approx(-0.25)  # worse than mixing single models
    assert gap_closed(0.7, 0.8, 0.8) is None


def test_cost_saving_at_a_quality_fraction() -> None:
    hull = Hull(costs=np.array([1.0, 3.0]), qualities=np.array([0.5, 1.0]))
    best = OperatingPoint(cost=3.0, quality=1.0)
    # .95 is reached at 1 + (.45/.5)·2 = 2.8 → saving 1 − 2.8/3
    assert cost_saving(hull, best, 0.95) == pytest.approx(1.0 - 2.8 / 3.0)
    assert cost_saving(hull, best, 0.5) == pytest.approx(1.0 - 1.0 / 3.0)
    assert cost_saving(hull, OperatingPoint(cost=3.0, quality=1.1), 0.95) is None  # never reaches 1.045
    assert cost_saving(hull, OperatingPoint(cost=0.0, quality=1.0), 0.95) is None


def test_random_routing_recovers_the_gap_linearly() -> None:
    curve = random_pgr_curve()
    assert [curve.at(s) for s in APGR_SHARES] == pytest.approx(list(APGR_SHARES))
    # (.1 + .2 + … + 1)/10 = 5.5/10
    assert curve.apgr() == pytest.approx(0.55)
    assert curve.cpt(0.5) == pytest.approx(0.5)
    assert curve.cpt(0.8) == pytest.approx(0.8)


def test_a_router_that_cannot_order_prompts_is_random_routing() -> None:
    strong = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    weak = np.array([0.0, 1.0, 0.0, 0.0, 1.0])
    curve = pgr_curve(strong, weak, np.full(5, 0.3))
    assert curve is not None
    assert curve.apgr() == pytest.approx(random_pgr_curve().apgr())
    assert curve.cpt(0.8) == pytest.approx(0.8)
