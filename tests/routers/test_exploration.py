"""Exploration distributions: what each policy spends its budget on, and that the probabilities are exact
(they are the propensities the off-policy estimators divide by)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from routers.exploration import BOLTZMANN, MARGIN, POLICIES, UNIFORM, choice_probabilities, draw

UTILITIES = [0.80, 0.78, 0.40, 0.10]
"""A near-tie between the first two candidates, and two clear losers."""
DRAWS = 40_000


@pytest.mark.parametrize("policy", POLICIES)
def test_probabilities_are_a_distribution_with_the_greedy_at_least_one_minus_epsilon(policy: str) -> None:
    p = choice_probabilities(UTILITIES, 0, policy, 0.2, margin=0.05, temperature=0.05)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all() and p[0] >= 0.8


def test_margin_and_boltzmann_spend_the_budget_on_plausible_candidates() -> None:
    uniform = choice_probabilities(UTILITIES, 0, UNIFORM, 0.2)
    margin = choice_probabilities(UTILITIES, 0, MARGIN, 0.2, margin=0.05)
    boltzmann = choice_probabilities(UTILITIES, 0, BOLTZMANN, 0.2, temperature=0.05)
    assert uniform[2] == uniform[3] == pytest.approx(0.05)
    assert margin[2] == margin[3] == 0.0 and margin[1] == pytest.approx(0.1)  # only the near-tie is explored
    assert boltzmann[1] > uniform[1] and uniform[2] > boltzmann[2] > boltzmann[3]
    assert (boltzmann > 0).all()  # every candidate keeps some probability


@pytest.mark.parametrize("policy", POLICIES)
def test_draws_follow_the_stated_probabilities(policy: str) -> None:
    p = choice_probabilities(UTILITIES, 1, policy, 0.5, margin=0.05, temperature=0.2)
    rng = random.Random(7)
    counts = np.bincount([draw(p, rng) for _ in range(DRAWS)], minlength=len(UTILITIES))
    expected = p * DRAWS
    sd = np.sqrt(DRAWS * p * (1 - p))
    assert (np.abs(counts - expected) <= 4 * sd + 1).all(), (counts, expected)
    assert counts[p == 0].sum() == 0


def test_unknown_policies_and_bad_epsilon_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown exploration policy 'greedy'; use one of uniform, margin"):
        choice_probabilities(UTILITIES, 0, "greedy", 0.1)
    with pytest.raises(ValueError, match="epsilon must be in"):
        choice_probabilities(UTILITIES, 0, UNIFORM, 1.5)
