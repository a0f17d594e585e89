"""Weighted, L2-penalised logistic regression on soft targets in [0, 1], fitted by L-BFGS (scipy).

Shared math for the hybrid and cascade families: arrays in, arrays out; it keeps no state and does no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from routers.calibration import logit, sigmoid
from routers.dataset import FloatMatrix

MAX_ITERATIONS = 300


def fit_logistic_regression(
    inputs: npt.NDArray[Any], targets: npt.NDArray[Any], weights: npt.NDArray[Any], l2: float
) -> tuple[FloatMatrix, float]:
    """(coef, intercept) minimising Σᵢ wᵢ·CE(σ(xᵢ·coef + b), tᵢ) / Σᵢ wᵢ + l2/2·|coef|².

    Targets may be fractional (a graded quality); the intercept is not penalised and starts at the logit of
    the weighted mean target, so a strong penalty gives the weighted base rate. Deterministic.
    """
    x = np.asarray(inputs, dtype=np.float64)
    t = np.clip(np.asarray(targets, dtype=np.float64), 0.0, 1.0)
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if x.shape[0] == 0 or total <= 0:
        return np.zeros(x.shape[1]), 0.0
    w = w / total
    start = np.zeros(x.shape[1] + 1)
    start[-1] = logit(float((w * t).sum()))

    def objective(theta: FloatMatrix) -> tuple[float, FloatMatrix]:
        coef, intercept = theta[:-1], theta[-1]
        z = x @ coef + intercept
        loss = float((w * (np.logaddexp(0.0, z) - t * z)).sum() + 0.5 * l2 * coef @ coef)
        residual = w * (sigmoid(z) - t)
        return loss, np.append(x.T @ residual + l2 * coef, residual.sum())

    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS})
    theta = np.asarray(result.x, dtype=np.float64)
    return theta[:-1].copy(), float(theta[-1])


def logistic_probability(inputs: npt.NDArray[Any], coef: FloatMatrix, intercept: float) -> FloatMatrix:
    """σ(x·coef + b) per row."""
    return sigmoid(np.asarray(inputs, dtype=np.float64) @ np.asarray(coef, dtype=np.float64) + intercept)
