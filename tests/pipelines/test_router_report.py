"""The routers report's scores and two-model table on the worked example of docs/metrics.md (no tuning)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import router_report, two_model_report
from routers.dataset import TrainingSet
from routers.metrics import RoutingData, routing_report

# docs/metrics.md worked example: strong costs .02, weak .01 on every prompt.
QUALITY = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
COST = np.tile([0.02, 0.01], (4, 1))
PRED_QUALITY = np.column_stack([0.5 + np.array([0.4, 0.3, 0.1, 0.2]), np.full(4, 0.5)])


def _report() -> dict:  # type: ignore[type-arg]
    data = RoutingData(
        ("strong", "weak"), QUALITY, COST, PRED_QUALITY, np.tile([2.0, 1.0], (4, 1)), np.array([0, 0, 1, 1])
    )
    return routing_report(data)


def test_scores_close_half_the_gap() -> None:
    s = router_report.scores(_report())
    # AIQ .28125, Zero router .25, oracle .3125 → (.28125 − .25)/(.3125 − .25) = .5
    assert s.aiq == pytest.approx(0.28125)
    assert s.gap_closed == pytest.approx(0.5)
    assert s.aiq_vs_oracle == pytest.approx(0.9)
    assert s.cost_share_at_best_quality == pytest.approx(1.0)  # the hull reaches .75 only at .02


def test_pair_scores_beside_random_routing() -> None:
    report = _report()
    router = two_model_report.pair_scores(report)
    assert router.apgr == pytest.approx(0.55)
    assert router.cpt == {0.5: pytest.approx(0.25), 0.8: pytest.approx(0.9)}
    assert router.cost_saving == pytest.approx(0.05625)
    random = two_model_report.random_scores(report)
    assert random.apgr == pytest.approx(0.55)
    assert random.cpt == {0.5: pytest.approx(0.5), 0.8: pytest.approx(0.8)}
    # the random mix reaches .95·.75 = .7125 at .01 + (.4625/.5)·.01 = .01925 → saving 1 − .01925/.02
    assert random.cost_saving == pytest.approx(0.0375)


def test_two_model_table_has_a_random_row() -> None:
    table = two_model_report.render([{"family": "example", "two_model": _report()}])
    assert "| example | 0.550 | +0.000 | 25% | 90% | 6% | 100% |" in table
    assert "| random (at the same cost) | 0.550 | +0.000 | 50% | 80% | 4% | 100% |" in table


def test_two_candidates_keeps_only_their_columns_in_their_order() -> None:
    quality = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    data = TrainingSet(
        prompt_ids=("p", "q"),
        prompts=("P", "Q"),
        models=("a", "b", "c"),
        quality=quality,
        cost=quality / 10,
        weight=np.ones((2, 3)),
        responses=(("ra", "rb", "rc"), ("sa", "sb", "sc")),
        features=np.zeros((2, 4), np.float32),
    )
    pair = two_model_report.two_candidates(data, ("c", "a"))
    assert pair.models == ("c", "a")
    np.testing.assert_array_equal(pair.quality, quality[:, [2, 0]])
    np.testing.assert_array_equal(pair.cost, quality[:, [2, 0]] / 10)
    assert pair.responses == (("rc", "ra"), ("sc", "sa"))
    assert pair.features is data.features
