"""Stacking math for ensembles: per candidate, non-negative weights of the members' predicted qualities and a
free intercept, fitted by weighted least squares on held-out outcomes.

Pure numpy/scipy on arrays; it knows no router family and does no I/O.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from routers.dataset import FloatMatrix

MIN_ROWS_PER_MEMBER = 5
"""Held-out outcomes per member needed before a candidate's weights are fitted (else: equal weights)."""


def stacking_weights(
    predictions: FloatMatrix, quality: FloatMatrix, weight: FloatMatrix, *, shared: bool = False
) -> tuple[FloatMatrix, FloatMatrix]:
    """(weights (candidates, members), intercept (candidates,)) minimising, per candidate j,
    Σ_i w_ij (q_ij − b_j − Σ_k a_jk q̂ᵏ_ij)² with a_jk ≥ 0; `shared`: one a_k for every candidate.

    `predictions` is (members, prompts, candidates); cells with weight 0 or unknown quality are left out.
    The intercepts are free: they are profiled out by centring each candidate on its weighted means, then
    NNLS fits the weights. A candidate with too few outcomes keeps equal weights and no intercept.
    """
    members, _, candidates = predictions.shape
    weights = np.full((candidates, members), 1.0 / members)
    intercept = np.zeros(candidates)
    centred: list[tuple[int, FloatMatrix, FloatMatrix, FloatMatrix, float]] = []
    for j in range(candidates):
        rows = (weight[:, j] > 0) & np.isfinite(quality[:, j])
        if rows.sum() < MIN_ROWS_PER_MEMBER * members:
            continue
        x, y, w = predictions[:, rows, j].T, quality[rows, j], weight[rows, j]
        x_mean, y_mean = w @ x / w.sum(), float(w @ y / w.sum())
        root = np.sqrt(w)
        centred.append((j, root[:, None] * (x - x_mean), root * (y - y_mean), x_mean, y_mean))
    if shared and centred:
        coef, _ = nnls(np.vstack([c[1] for c in centred]), np.concatenate([c[2] for c in centred]))
        fits = [(c, coef) for c in centred]
    else:
        fits = [(c, nnls(c[1], c[2])[0]) for c in centred]
    for (j, _, _, x_mean, y_mean), coef in fits:
        weights[j], intercept[j] = coef, y_mean - float(x_mean @ coef)
    return weights, intercept


def stacked(predictions: FloatMatrix, weights: FloatMatrix, intercept: FloatMatrix) -> FloatMatrix:
    """The stacked quality (prompts, candidates), clipped to 0..1."""
    combined = np.einsum("kij,jk->ij", predictions, weights) + intercept[None, :]
    return np.asarray(np.clip(combined, 0.0, 1.0), dtype=np.float64)
