"""Off-policy estimates of a target routing policy from logged bandit feedback: IPS, SNIPS, doubly robust.

Pure numpy on per-row arrays (docs/metrics.md, "Off-policy estimates"); no I/O, and no assumption that the
outcome is a quality in [0, 1]: cost or any real-valued outcome works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from routers.decision import FloatArray, IntArray

Z_95 = 1.96
"""Standard-normal quantile of a two-sided 95 % interval."""
PROBABILITY_TOLERANCE = 1e-6
"""How far a row of target probabilities may sum from 1 (float rounding of a softmax, not a bug)."""
MIN_ROWS = 2
"""A standard error needs at least two per-row terms (sd with ddof = 1)."""
_ROWS_SHOWN = 5


@dataclass(frozen=True)
class OffPolicyEstimate:
    """An estimated policy value with its 95 % normal-approximation interval.

    `low` and `high` are value ∓ 1.96·stderr and are not clipped to the outcome's range. The effective
    sample size (Σw)²/Σw² of the importance weights says how many logged rows the estimate really rests on.
    """

    value: float
    stderr: float
    low: float
    high: float
    n: int
    effective_sample_size: float


@dataclass(frozen=True)
class _Logged:
    """Validated logged rows: action taken, its outcome and propensity, and the target's probabilities."""

    actions: IntArray
    outcome: FloatArray
    propensities: FloatArray
    target: FloatArray

    @property
    def weights(self) -> FloatArray:
        """Importance weights w_i = π(a_i | x_i) / p_i."""
        rows = np.arange(self.actions.size)
        return np.asarray(self.target[rows, self.actions] / self.propensities, dtype=np.float64)


def one_hot(actions: npt.ArrayLike, k: int) -> FloatArray:
    """Target probabilities (n, k) of a deterministic policy that picks candidate actions[i] for row i."""
    if k < 1:
        raise ValueError(f"k (the number of candidates) must be >= 1, got {k}")
    indices = _action_indices(actions, k, "actions")
    probabilities = np.zeros((indices.size, k), dtype=np.float64)
    probabilities[np.arange(indices.size), indices] = 1.0
    return probabilities


def ips(
    logged_actions: npt.ArrayLike,
    outcome: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
) -> OffPolicyEstimate:
    """Inverse propensity scoring: the mean of w_i·y_i. Unbiased when every p_i > 0 where π puts mass."""
    return _ips(_validate(logged_actions, outcome, propensities, target_probabilities))


def snips(
    logged_actions: npt.ArrayLike,
    outcome: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
) -> OffPolicyEstimate:
    """Self-normalised IPS: Σ w_i·y_i / Σ w_i. Slightly biased, lower variance, stays within the outcomes' range.

    Its interval uses the delta method: the linearised terms w_i·(y_i − v̂) / mean(w).
    """
    return _snips(_validate(logged_actions, outcome, propensities, target_probabilities))


def doubly_robust(
    logged_actions: npt.ArrayLike,
    outcome: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
    reward_model: npt.ArrayLike,
    *,
    clusters: npt.ArrayLike | None = None,
) -> OffPolicyEstimate:
    """Doubly robust: mean of Σ_a π(a|x_i)·q̂(x_i, a) + w_i·(y_i − q̂(x_i, a_i)).

    `reward_model` is q̂, the predicted outcome (quality, cost, ...) of every candidate per row, shape (n, K).
    Unbiased if either the propensities or q̂ are right; the better q̂, the smaller the variance.
    `clusters` (one label per row, e.g. the prompt) makes the interval cluster-robust: rows of one prompt
    logged several times share its direct term, so they are not independent.
    """
    logged = _validate(logged_actions, outcome, propensities, target_probabilities)
    return _doubly_robust(logged, _reward_model(reward_model, logged.target.shape), _clusters(clusters, logged))


def doubly_robust_advantage(
    logged_actions: npt.ArrayLike,
    outcome: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
    reward_model: npt.ArrayLike,
    *,
    clusters: npt.ArrayLike | None = None,
) -> OffPolicyEstimate:
    """How much more outcome the target policy earns than the logging policy did, on the same rows: the mean
    of DR term − y_i. Paired, so its interval is much tighter than the difference of two separate intervals;
    a positive `low` says the target beats the logging policy at 95 %."""
    logged = _validate(logged_actions, outcome, propensities, target_probabilities)
    model = _reward_model(reward_model, logged.target.shape)
    terms = _dr_terms(logged, model) - logged.outcome
    return _estimate(float(terms.mean()), terms, logged.weights, _clusters(clusters, logged))


def evaluate_policy(
    logged_actions: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
    reward_model: npt.ArrayLike,
) -> dict[str, OffPolicyEstimate]:
    """All three estimates of one target policy on one log: {"ips", "snips", "dr"}."""
    logged = _validate(logged_actions, outcomes, propensities, target_probabilities)
    model = _reward_model(reward_model, logged.target.shape)
    return {"ips": _ips(logged), "snips": _snips(logged), "dr": _doubly_robust(logged, model)}


def _ips(logged: _Logged) -> OffPolicyEstimate:
    weights = logged.weights
    terms = weights * logged.outcome
    return _estimate(float(terms.mean()), terms, weights)


def _snips(logged: _Logged) -> OffPolicyEstimate:
    weights = logged.weights
    total = float(weights.sum())
    if total <= 0.0:
        raise ValueError(
            "the target policy gives probability 0 to every logged action, so SNIPS is undefined; "
            "log with exploration (propensities > 0 on the target's choices) or use doubly_robust"
        )
    value = float((weights * logged.outcome).sum() / total)
    linearised = weights * (logged.outcome - value) / weights.mean()
    return _estimate(value, linearised, weights)


def _dr_terms(logged: _Logged, model: FloatArray) -> FloatArray:
    rows = np.arange(logged.actions.size)
    direct = (logged.target * model).sum(axis=1)
    return np.asarray(direct + logged.weights * (logged.outcome - model[rows, logged.actions]), dtype=np.float64)


def _doubly_robust(logged: _Logged, model: FloatArray, clusters: IntArray | None = None) -> OffPolicyEstimate:
    terms = _dr_terms(logged, model)
    return _estimate(float(terms.mean()), terms, logged.weights, clusters)


def _estimate(
    value: float, terms: FloatArray, weights: FloatArray, clusters: IntArray | None = None
) -> OffPolicyEstimate:
    """value ± 1.96·stderr, with the effective sample size of the weights. The stderr is sd(terms)/√n, or,
    with `clusters`, the cluster-robust one: √(G/(G−1)·Σ_g (Σ_{i∈g} (t_i − v̂))²) / n over the G clusters."""
    n = terms.size
    stderr = float(terms.std(ddof=1) / np.sqrt(n)) if clusters is None else _clustered_stderr(terms, value, clusters)
    squares = float((weights**2).sum())
    ess = float(weights.sum() ** 2 / squares) if squares > 0.0 else 0.0
    return OffPolicyEstimate(
        value=value,
        stderr=stderr,
        low=value - Z_95 * stderr,
        high=value + Z_95 * stderr,
        n=n,
        effective_sample_size=ess,
    )


def _clustered_stderr(terms: FloatArray, value: float, clusters: IntArray) -> float:
    sums = np.bincount(clusters, weights=terms - value)
    groups = int(np.count_nonzero(np.bincount(clusters)))
    if groups < MIN_ROWS:
        return float("inf")
    return float(np.sqrt(groups / (groups - 1) * float((sums**2).sum())) / terms.size)


def _clusters(clusters: npt.ArrayLike | None, logged: _Logged) -> IntArray | None:
    if clusters is None:
        return None
    labels = np.asarray(clusters)
    if labels.shape != logged.actions.shape:
        raise ValueError(f"clusters must hold one label per logged row ({logged.actions.size}), got {labels.shape}")
    return np.unique(labels, return_inverse=True)[1].astype(np.intp)


def _validate(
    logged_actions: npt.ArrayLike,
    outcome: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
) -> _Logged:
    target = _target(target_probabilities)
    n = target.shape[0]
    actions = _action_indices(logged_actions, target.shape[1], "logged_actions")
    values = _finite_vector(outcome, "outcome", "drop rows whose outcome is unknown before estimating")
    p = _finite_vector(propensities, "propensities", "drop rows logged without a propensity")
    for name, size in (("logged_actions", actions.size), ("outcome", values.size), ("propensities", p.size)):
        if size != n:
            raise ValueError(f"{name} has {size} rows but target_probabilities has {n}; pass one entry per row")
    outside = np.flatnonzero((p <= 0.0) | (p > 1.0))
    if outside.size:
        raise ValueError(
            f"propensities must be in (0, 1], got {p[outside[0]]} at row {outside[0]} "
            f"({outside.size} rows outside); a logged choice had some probability, and at most 1"
        )
    return _Logged(actions=actions, outcome=values, propensities=p, target=target)


def _target(target_probabilities: npt.ArrayLike) -> FloatArray:
    target = np.asarray(target_probabilities, dtype=np.float64)
    if target.ndim != 2 or target.shape[1] < 1:
        raise ValueError(
            f"target_probabilities must be an (n, K) matrix, one row of candidate probabilities per logged "
            f"row, got shape {target.shape}; use one_hot(actions, K) for a deterministic policy"
        )
    if target.shape[0] < MIN_ROWS:
        raise ValueError(f"need at least {MIN_ROWS} logged rows for a standard error, got {target.shape[0]}")
    if not np.all(np.isfinite(target)) or np.any(target < 0.0):
        raise ValueError("target_probabilities must be finite and >= 0")
    bad = np.flatnonzero(np.abs(target.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE)
    if bad.size:
        raise ValueError(
            f"each row of target_probabilities must sum to 1 (within {PROBABILITY_TOLERANCE}); "
            f"rows {_first(bad)} sum to {_first(target.sum(axis=1)[bad])}; normalise them"
        )
    return target


def _reward_model(reward_model: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    model = np.asarray(reward_model, dtype=np.float64)
    if model.shape != shape:
        raise ValueError(
            f"reward_model must have the shape of target_probabilities {shape} (a predicted outcome per "
            f"row and candidate), got {model.shape}"
        )
    if not np.all(np.isfinite(model)):
        raise ValueError("reward_model must be finite; fill missing predictions before estimating")
    return model


def _action_indices(actions: npt.ArrayLike, k: int, name: str) -> IntArray:
    raw = np.asarray(actions)
    if raw.ndim != 1 or raw.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D array of integer candidate indices, got {raw.dtype} {raw.shape}")
    bad = np.flatnonzero((raw < 0) | (raw >= k))
    if bad.size:
        raise ValueError(f"{name} must be in [0, {k}), got {_first(raw[bad])} at rows {_first(bad)}")
    return raw.astype(np.intp)


def _finite_vector(values: npt.ArrayLike, name: str, fix: str) -> FloatArray:
    vector = np.asarray(values, dtype=np.float64)
    if vector.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, one entry per logged row, got shape {vector.shape}")
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {_first(vector[bad])} at rows {_first(bad)}; {fix}")
    return vector


def _first(values: npt.NDArray[np.generic]) -> list[object]:
    """The first few entries, for an error message."""
    return [value.item() for value in values[:_ROWS_SHOWN]]
