"""Logistic (Platt) calibration recovers a known map and stays finite on separable data."""

from __future__ import annotations

import numpy as np
import pytest

from routers.calibration import fit_logistic, logit, sigmoid


def test_recovers_the_map_that_generated_soft_targets() -> None:
    scores = np.linspace(-3, 3, 61)
    slope, intercept = fit_logistic(scores, sigmoid(2.0 * scores - 1.0), np.ones(61), ridge=0.0)
    assert (slope, intercept) == pytest.approx((2.0, -1.0), abs=1e-6)


def test_separable_labels_give_a_finite_increasing_map() -> None:
    scores = np.array([-2.0, -1.0, 1.0, 2.0])
    slope, intercept = fit_logistic(scores, np.array([0.0, 0.0, 1.0, 1.0]), np.ones(4))
    assert 0 < slope < 1e3 and np.isfinite(intercept)
    assert fit_logistic(scores, np.ones(4), np.zeros(4)) == (0.0, 0.0)


def test_sigmoid_never_overflows_and_inverts_logit() -> None:
    assert sigmoid(np.array([-1e4, 1e4])).tolist() == [0.0, 1.0]
    assert float(sigmoid(logit(0.3))) == pytest.approx(0.3)
