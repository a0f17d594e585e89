"""Logistic calibration (Platt scaling): a weighted 1-D logistic fit from a score to a 0..1 quality.

Pure numpy, deterministic (Newton's method, fixed iterations); it fits no router and keeps no state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from routers.dataset import FloatMatrix

EPSILON = 1e-6
"""Probabilities are kept this far from 0 and 1 so logits stay finite."""


def sigmoid(values: npt.ArrayLike) -> FloatMatrix:
    # exp of a non-positive number only, so large scores never overflow.
    x = np.asarray(values, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logit(probability: float) -> float:
    p = min(max(probability, EPSILON), 1.0 - EPSILON)
    return float(np.log(p / (1.0 - p)))


def fit_logistic(
    scores: FloatMatrix,
    targets: FloatMatrix,
    weights: FloatMatrix,
    ridge: float = 1e-3,
    iterations: int = 50,
) -> tuple[float, float]:
    """(slope, intercept) minimising weighted cross-entropy of sigmoid(slope·score + intercept) against
    soft targets in [0, 1], plus `ridge`·slope² so separable data still gives a finite slope."""
    x = np.asarray(scores, dtype=np.float64)
    t = np.clip(np.asarray(targets, dtype=np.float64), 0.0, 1.0)
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0:
        return 0.0, 0.0
    w = w / total
    slope, intercept = 0.0, logit(float((w * t).sum()))
    for _ in range(iterations):
        p = sigmoid(slope * x + intercept)
        residual, curvature = w * (p - t), w * p * (1.0 - p)
        gradient = np.array([(residual * x).sum() + 2 * ridge * slope, residual.sum()])
        hessian = np.array(
            [
                [(curvature * x * x).sum() + 2 * ridge, (curvature * x).sum()],
                [(curvature * x).sum(), curvature.sum() + EPSILON],
            ]
        )
        step = np.linalg.solve(hessian, gradient)
        slope, intercept = slope - float(step[0]), intercept - float(step[1])
        if float(np.abs(step).max()) < 1e-10:
            break
    return slope, intercept
