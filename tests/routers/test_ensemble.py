"""Stacking of member predictions (routers/stacking.py), on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from routers.stacking import MIN_ROWS_PER_MEMBER, stacked, stacking_weights


def _members(rows: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three members' predictions (members, prompts, 2 candidates) and outcomes that only member 1 predicts."""
    rng = np.random.default_rng(seed)
    right = rng.uniform(0.1, 0.9, size=(rows, 2))
    noise = rng.uniform(0.0, 1.0, size=(rows, 2))
    backwards = 1.0 - right
    return np.stack([noise, right, backwards]), right


def test_weights_go_to_the_member_that_is_right_on_validation() -> None:
    predictions, quality = _members()
    weights, intercept = stacking_weights(predictions, quality, np.ones_like(quality))
    np.testing.assert_allclose(weights, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(intercept, 0.0, atol=1e-9)
    np.testing.assert_allclose(stacked(predictions, weights, intercept), quality, atol=1e-9)


def test_weights_are_never_negative_and_the_intercept_is_free() -> None:
    predictions, quality = _members()
    # Only the anti-correlated member and noise: the best non-negative fit is (almost) the mean, via the intercept.
    weights, intercept = stacking_weights(predictions[[0, 2]], quality, np.ones_like(quality))
    assert (weights >= 0.0).all()
    np.testing.assert_allclose(weights[:, 1], 0.0, atol=1e-12)
    # With a free intercept, least squares reproduces the mean outcome of each candidate exactly.
    fitted = stacked(predictions[[0, 2]], weights, intercept)
    np.testing.assert_allclose(fitted.mean(axis=0), quality.mean(axis=0), atol=1e-9)
    shifted, shifted_intercept = stacking_weights(predictions, quality + 0.05, np.ones_like(quality))
    np.testing.assert_allclose(shifted, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(shifted_intercept, 0.05, atol=1e-9)


def test_unknown_cells_are_left_out_and_thin_candidates_keep_equal_weights() -> None:
    predictions, quality = _members()
    weight = np.ones_like(quality)
    quality = quality.copy()
    quality[:10, 0] = np.nan  # unknown: ignored even though its weight is 1
    weight[: quality.shape[0] - MIN_ROWS_PER_MEMBER * 3 + 1, 1] = 0.0  # one row short for candidate 1
    weights, intercept = stacking_weights(predictions, quality, weight)
    np.testing.assert_allclose(weights[0], [0.0, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(weights[1], 1.0 / 3.0)
    assert intercept[1] == 0.0


def test_shared_weights_fit_every_candidate_at_once() -> None:
    predictions, quality = _members()
    # Candidate 1 is predicted by member 0 instead: one shared weight vector must compromise.
    predictions[0, :, 1] = quality[:, 1]
    predictions[1, :, 1] = np.random.default_rng(1).uniform(size=quality.shape[0])
    own, _ = stacking_weights(predictions, quality, np.ones_like(quality))
    np.testing.assert_allclose(own, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], atol=1e-9)
    shared, _ = stacking_weights(predictions, quality, np.ones_like(quality), shared=True)
    np.testing.assert_allclose(shared[0], shared[1])
    assert shared[0, 0] > 0.0 and shared[0, 1] > 0.0


@pytest.mark.parametrize("shared", [False, True])
def test_stacked_predictions_are_clipped_to_qualities(shared: bool) -> None:
    predictions, quality = _members()
    weights, intercept = stacking_weights(predictions, quality, np.ones_like(quality), shared=shared)
    out = stacked(predictions * 3.0, weights, intercept + 1.0)
    assert out.min() >= 0.0 and out.max() <= 1.0
