"""Exploration policies of the gateway: with probability ε the routed choice is replaced by a draw from an
exploration distribution over the candidates, and the exact probability of what is served is the propensity
the off-policy estimators need.

- `uniform`: every candidate alike (ε-uniform; pays for draws of candidates that are plainly worse).
- `margin`: uniform over the candidates whose predicted utility is within `margin` of the best, so the
  budget goes where the router is unsure between plausible candidates.
- `boltzmann`: a softmax of predicted utility at `temperature`: near-ties are explored often, clear losers
  rarely, and every candidate keeps some probability (the estimators need it wherever a new router may go).

Pure: utilities in, probabilities out; `draw` takes the caller's random generator.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final, Literal

import numpy as np

UNIFORM: Final = "uniform"
MARGIN: Final = "margin"
BOLTZMANN: Final = "boltzmann"
ExplorationPolicy = Literal["uniform", "margin", "boltzmann"]
POLICIES: Final = (UNIFORM, MARGIN, BOLTZMANN)


def exploration_distribution(
    utilities: Sequence[float], greedy: int, policy: str, *, margin: float = 0.05, temperature: float = 0.05
) -> np.ndarray:
    """The distribution an exploratory draw comes from (sums to 1); `greedy` is the routed choice."""
    u = np.asarray(utilities, dtype=np.float64)
    if u.ndim != 1 or u.size == 0 or not 0 <= greedy < u.size:
        raise ValueError(f"need one utility per candidate and a greedy index among them, got {u.shape}, {greedy}")
    if policy == UNIFORM:
        return np.full(u.size, 1.0 / u.size)
    if policy == MARGIN:
        plausible = u >= u[greedy] - margin
        plausible[greedy] = True
        return np.asarray(plausible / plausible.sum(), dtype=np.float64)
    if policy == BOLTZMANN:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        scaled = np.exp((u - u.max()) / temperature)
        return np.asarray(scaled / scaled.sum(), dtype=np.float64)
    raise ValueError(f"unknown exploration policy {policy!r}; use one of {', '.join(POLICIES)}")


def choice_probabilities(
    utilities: Sequence[float],
    greedy: int,
    policy: str,
    epsilon: float,
    *,
    margin: float = 0.05,
    temperature: float = 0.05,
) -> np.ndarray:
    """The probability of serving each candidate: (1 − ε)·[greedy] + ε·(the exploration distribution)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    probabilities = epsilon * exploration_distribution(
        utilities, greedy, policy, margin=margin, temperature=temperature
    )
    probabilities[greedy] += 1.0 - epsilon
    return probabilities


def draw(distribution: np.ndarray, rng: random.Random) -> int:
    """One index drawn from `distribution` with `rng` (the last index absorbs float rounding)."""
    threshold = rng.random()
    cumulative = np.cumsum(distribution)
    index = int(np.searchsorted(cumulative, threshold, side="right"))
    return min(index, distribution.size - 1)
