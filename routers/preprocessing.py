"""Array math shared by the numpy-predicting families: feature standardisation and sample-weight scaling.

Pure functions of arrays; they fit no model and keep no state (callers store the returned arrays).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from routers.dataset import FloatMatrix

MIN_SCALE = 1e-6
"""Columns with a smaller standard deviation are only centred, never blown up."""


def scaling(features: npt.NDArray[Any]) -> tuple[FloatMatrix, FloatMatrix]:
    """Per-column mean and standard deviation (1 where a column is constant) of training features."""
    values = np.asarray(features, dtype=np.float64)
    std = values.std(axis=0)
    return values.mean(axis=0), np.where(std > MIN_SCALE, std, 1.0)


def standardize(features: npt.NDArray[Any], mean: FloatMatrix, scale: FloatMatrix) -> FloatMatrix:
    """Features centred and scaled with the stored training statistics, as float64."""
    return (np.asarray(features, dtype=np.float64) - mean) / scale


def unit_rows(matrix: FloatMatrix) -> FloatMatrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), so dot products are cosines."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float64)


def unit_mean(weights: FloatMatrix) -> FloatMatrix:
    """Sample weights rescaled to mean 1, so a penalty means the same for 1/propensity and unit weights."""
    mean = float(np.mean(weights)) if weights.size else 0.0
    return weights / mean if mean > 0 else np.ones_like(weights)
