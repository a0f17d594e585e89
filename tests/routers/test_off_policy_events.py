"""Off-policy estimates on simulated logs whose true values are known: every logged request is its own event
with its own propensity (repeated prompts included), so DR and IPS are unbiased and the cluster-robust
intervals cover the truth, for 2, 3 and 11 candidates and 1 to 5 passes over the same prompts, under a
logging policy that is far from uniform (propensities down to a few per cent)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from features import schema
from routers.base import Prediction
from routers.dataset import training_set
from routers.decision import choose
from routers.exploration import BOLTZMANN, choice_probabilities
from routers.off_policy_scoring import off_policy_headline

PROMPTS = 120
LOGS = 60
"""Simulated logging runs per case: the mean of their estimates is compared with the truth."""
COST_WEIGHT = 50.0
TOLERANCE_SE = 4.0
"""How many standard errors of the mean of the estimates they may lie from the truth."""
MIN_COVERAGE = 0.85
"""Share of the 95% intervals that must hold the truth (60 draws: 0.95 expected, 0.85 is 3.6 sd below) where
the estimate rests on at least COVERED_ESS effective samples; on fewer the normal interval undercovers (the
estimate is skewed), which is why every report gives the effective sample size."""
COVERED_ESS = 20.0
STDERR_RATIO = (0.7, 1.35)
"""The reported standard error (mean over the logs) over the estimates' actual spread: cluster-robust, so
repeated prompts do not make it too small."""

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class World:
    """True per-prompt quality and cost of each model, the logging policy's probabilities, and a router."""

    quality: Floats
    cost: Floats
    logging: Floats
    prediction: Prediction

    def truth(self) -> dict[str, float]:
        chosen = choose(self.prediction.quality, self.prediction.cost, COST_WEIGHT)
        rows = np.arange(self.quality.shape[0])
        utility = self.quality - COST_WEIGHT * self.cost
        logging_utility = (self.logging * utility).sum(axis=1)
        return {
            "dr_quality": float(self.quality[rows, chosen].mean()),
            "dr_cost": float(self.cost[rows, chosen].mean()),
            "dr_advantage": float((utility[rows, chosen] - logging_utility).mean()),
        }


def world(models: int, seed: int) -> World:
    rng = np.random.default_rng(seed)
    quality = rng.beta(2.0, 2.0, size=(PROMPTS, models))
    cost = rng.uniform(0.0005, 0.01, size=models) * rng.uniform(0.5, 1.5, size=(PROMPTS, models))
    scores = rng.normal(0.0, 1.5, size=(PROMPTS, models))
    # A softmax mixed with a uniform floor, as the gateway's exploration keeps one: propensities ≥ 0.3 / K.
    logging = 0.7 * np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True) + 0.3 / models
    # A router that is right on average but wrong prompt by prompt: DR has to correct it.
    noisy = np.clip(quality + rng.normal(0.1, 0.2, size=quality.shape), 0.0, 1.0)
    return World(quality, cost, logging, Prediction(noisy, cost * rng.uniform(0.7, 1.3, size=cost.shape)))


def simulated_log(w: World, passes: int, rng: np.random.Generator) -> pa.Table:
    """`passes` requests per prompt; each draws a model from the logging policy and observes a 0/1 quality."""
    models = [f"m{j:02d}" for j in range(w.quality.shape[1])]
    rows: dict[str, list[object]] = {c: [] for c in (schema.PROMPT_ID, schema.PROMPT, schema.MODEL)}
    rows |= {schema.QUALITY: [], schema.COST_USD: [], schema.PROPENSITY: [], schema.RESPONSE: []}
    for _ in range(passes):
        for i in range(PROMPTS):
            a = int(rng.choice(len(models), p=w.logging[i]))
            rows[schema.PROMPT_ID].append(f"p{i}")
            rows[schema.PROMPT].append(f"prompt {i}")
            rows[schema.MODEL].append(models[a])
            rows[schema.QUALITY].append(float(rng.random() < w.quality[i, a]))
            rows[schema.COST_USD].append(float(w.cost[i, a]))
            rows[schema.PROPENSITY].append(float(w.logging[i, a]))
            rows[schema.RESPONSE].append(None)
    return pa.table(rows)


@pytest.mark.parametrize("passes", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("models", [2, 3, 11])
def test_estimates_on_every_logged_request_are_unbiased(models: int, passes: int) -> None:
    w = world(models, seed=models * 10 + passes)
    truth = w.truth()
    rng = np.random.default_rng(passes)
    names = tuple(f"m{j:02d}" for j in range(models))
    found: dict[str, list[float]] = {key: [] for key in (*truth, "ips_quality")}
    covered, stderr, ess = 0, [], []
    for _ in range(LOGS):
        data = training_set(simulated_log(w, passes, rng), names)
        assert data.events.size == PROMPTS * passes  # every request, repeated prompts included
        metrics = off_policy_headline(w.prediction, data, "test", COST_WEIGHT)
        for key, values in found.items():
            values.append(metrics[f"test_{key}"])
        covered += metrics["test_dr_quality_low"] <= truth["dr_quality"] <= metrics["test_dr_quality_high"]
        stderr.append((metrics["test_dr_quality_high"] - metrics["test_dr_quality_low"]) / (2 * 1.96))
        ess.append(metrics["test_ope_effective_samples"])
        assert metrics["test_ope_samples"] == PROMPTS * passes and metrics["test_ope_prompts"] == PROMPTS
    for key, value in {**truth, "ips_quality": truth["dr_quality"]}.items():
        estimates = np.asarray(found[key])
        error = abs(estimates.mean() - value)
        assert error <= TOLERANCE_SE * estimates.std(ddof=1) / np.sqrt(LOGS) + 1e-9, (key, estimates.mean(), value)
    ratio = np.mean(stderr) / np.std(found["dr_quality"], ddof=1)
    assert STDERR_RATIO[0] <= ratio <= STDERR_RATIO[1], ratio
    if np.mean(ess) >= COVERED_ESS:
        assert covered / LOGS >= MIN_COVERAGE, (covered, np.mean(ess))


def test_the_advantage_interval_is_tighter_than_two_separate_ones() -> None:
    w = world(2, seed=7)
    data = training_set(simulated_log(w, 3, np.random.default_rng(0)), ("m00", "m01"))
    metrics = off_policy_headline(w.prediction, data, "valid", COST_WEIGHT)
    paired = metrics["valid_dr_advantage_high"] - metrics["valid_dr_advantage_low"]
    separate = metrics["valid_dr_utility_high"] - metrics["valid_dr_utility_low"]
    assert paired < separate
    assert metrics["valid_dr_advantage"] == pytest.approx(
        metrics["valid_dr_utility"] - metrics["valid_logging_utility"]
    )


@pytest.mark.parametrize("models", [3, 11])
def test_estimates_under_boltzmann_exploration_are_unbiased(models: int) -> None:
    """The gateway's Boltzmann exploration around a logging router's choice (ε 0.3): its exact propensities
    keep DR and IPS unbiased for another router, with three passes over the prompts."""
    base = world(models, seed=100 + models)
    rng = np.random.default_rng(models)
    logging_quality = np.clip(base.quality + rng.normal(0.0, 0.15, size=base.quality.shape), 0.0, 1.0)
    utilities = logging_quality - COST_WEIGHT * base.cost
    greedy = choose(logging_quality, base.cost, COST_WEIGHT)
    logging = np.stack(
        [
            choice_probabilities(u, int(g), BOLTZMANN, 0.3, temperature=0.1)
            for u, g in zip(utilities, greedy, strict=True)
        ]
    )
    w = World(base.quality, base.cost, logging, base.prediction)
    truth = w.truth()
    names = tuple(f"m{j:02d}" for j in range(models))
    found: dict[str, list[float]] = {"dr_quality": [], "ips_quality": [], "dr_advantage": []}
    for _ in range(LOGS):
        metrics = off_policy_headline(w.prediction, training_set(simulated_log(w, 3, rng), names), "t", COST_WEIGHT)
        for key, values in found.items():
            values.append(metrics[f"t_{key}"])
    for key, value in {**truth, "ips_quality": truth["dr_quality"]}.items():
        if key not in found:
            continue
        estimates = np.asarray(found[key])
        error = abs(estimates.mean() - value)
        assert error <= TOLERANCE_SE * estimates.std(ddof=1) / np.sqrt(LOGS) + 1e-9, (key, estimates.mean(), value)
