"""The routing decision, written once: per prompt, pick argmax over candidates of quality − λ·cost.

Families predict quality and cost; they never decide. The gateway, batch routing and the metrics call this.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def utility(quality: FloatArray, cost: FloatArray, cost_weight: float) -> FloatArray:
    """Utility of each (prompt, candidate): quality − λ·cost. Shapes (n, m) in, (n, m) out."""
    if cost_weight < 0:
        raise ValueError(f"cost weight must be >= 0, got {cost_weight}")
    if np.isinf(cost_weight):
        return -np.asarray(cost, dtype=np.float64)
    return np.asarray(quality, dtype=np.float64) - cost_weight * np.asarray(cost, dtype=np.float64)


def choose(quality: FloatArray, cost: FloatArray, cost_weight: float) -> IntArray:
    """Index of the chosen candidate per prompt. λ = inf means "cheapest".

    Ties go to the cheaper candidate, then to the earlier one, so decisions are deterministic.
    """
    quality = np.atleast_2d(np.asarray(quality, dtype=np.float64))
    cost = np.atleast_2d(np.asarray(cost, dtype=np.float64))
    if quality.shape != cost.shape:
        raise ValueError(f"quality {quality.shape} and cost {cost.shape} must have the same shape")
    score = utility(quality, cost, cost_weight)
    best = score.max(axis=1, keepdims=True)
    # Among candidates within rounding of the best utility take the cheapest; argmin keeps the first.
    tied = np.isclose(score, best, rtol=0.0, atol=1e-12)
    masked_cost = np.where(tied, cost, np.inf)
    return np.asarray(masked_cost.argmin(axis=1), dtype=np.intp)
