"""Expected cost per candidate: the weighted mean of the observed costs of each model.

Shared by the families that learn quality only; it never looks at quality.
"""

from __future__ import annotations

import numpy as np

from routers.dataset import FloatMatrix, TrainingSet


def mean_costs(train: TrainingSet) -> FloatMatrix:
    """Per model, the weighted mean observed cost (a model never observed gets the overall mean)."""
    known = ~np.isnan(train.cost)
    weight = np.where(known, np.maximum(train.weight, 1e-12), 0.0)
    totals = np.nansum(np.where(known, train.cost, 0.0) * weight, axis=0)
    counts = weight.sum(axis=0)
    overall = float(np.nanmean(train.cost)) if known.any() else 0.0
    return np.where(counts > 0, totals / np.maximum(counts, 1e-12), overall)


def mean_qualities(train: TrainingSet) -> FloatMatrix:
    """Per model, the weighted mean observed quality (a model never observed gets the overall mean)."""
    known = train.known
    weight = np.where(known, train.weight, 0.0)
    totals = (np.where(known, train.quality, 0.0) * weight).sum(axis=0)
    counts = weight.sum(axis=0)
    overall = float(np.nanmean(train.quality))
    return np.where(counts > 0, totals / np.maximum(counts, 1e-12), overall)


def broadcast(per_model: FloatMatrix, rows: int) -> FloatMatrix:
    """The same per-model values for every prompt."""
    return np.tile(np.asarray(per_model, dtype=np.float64), (rows, 1))
