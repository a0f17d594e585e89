"""Off-policy estimators on hand-computed cases, a seeded simulation and random inputs (docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routers.metrics import OffPolicyEstimate, doubly_robust, evaluate_policy, ips, one_hot, snips
from routers.metrics.off_policy import Z_95

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)

# The worked example: four logged rows, two candidates, the target always picks candidate 0.
ACTIONS = np.array([0, 1, 0, 1])
REWARDS = np.array([1.0, 0.5, 0.0, 1.0])
PROPENSITIES = np.array([0.5, 0.5, 0.25, 0.8])
TARGET = one_hot([0, 0, 0, 0], 2)
REWARD_MODEL = np.array([[0.5, 0.5], [0.8, 0.2], [0.2, 0.6], [1.0, 0.0]])


def _check_interval(estimate: OffPolicyEstimate) -> None:
    assert estimate.low == pytest.approx(estimate.value - Z_95 * estimate.stderr)
    assert estimate.high == pytest.approx(estimate.value + Z_95 * estimate.stderr)


def test_one_hot_puts_all_mass_on_the_chosen_candidate() -> None:
    assert one_hot([2, 0], 3).tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    assert one_hot(np.array([], dtype=int), 2).shape == (0, 2)


def test_ips_hand_computed() -> None:
    estimate = ips(ACTIONS, REWARDS, PROPENSITIES, TARGET)
    # π(a_i|x_i) = 1, 0, 1, 0 → w = 1/.5, 0, 1/.25, 0 = 2, 0, 4, 0; terms w·r = 2, 0, 0, 0.
    # value = 2/4 = .5; deviations 1.5, −.5, −.5, −.5 → Σ² = 2.25 + 3·.25 = 3, var = 3/3 = 1,
    # stderr = 1/√4 = .5; interval .5 ∓ 1.96·.5 = (−.48, 1.48); ESS = (2 + 4)²/(4 + 16) = 36/20 = 1.8.
    assert estimate.value == pytest.approx(0.5)
    assert estimate.stderr == pytest.approx(0.5)
    assert estimate.low == pytest.approx(-0.48)
    assert estimate.high == pytest.approx(1.48)
    assert estimate.n == 4
    assert estimate.effective_sample_size == pytest.approx(1.8)


def test_snips_hand_computed() -> None:
    estimate = snips(ACTIONS, REWARDS, PROPENSITIES, TARGET)
    # value = Σ w·r / Σ w = 2/6 = 1/3. Linearised terms w·(r − 1/3)/mean(w), mean(w) = 6/4 = 1.5:
    # 2·(2/3)/1.5 = 8/9, 0, 4·(−1/3)/1.5 = −8/9, 0 → mean 0, Σ² = 128/81, var = 128/243,
    # stderr = √(128/243)/2 ≈ .36289.
    assert estimate.value == pytest.approx(1 / 3)
    assert estimate.stderr == pytest.approx(math.sqrt(128 / 243) / 2)
    assert estimate.effective_sample_size == pytest.approx(1.8)
    _check_interval(estimate)


def test_doubly_robust_hand_computed() -> None:
    estimate = doubly_robust(ACTIONS, REWARDS, PROPENSITIES, TARGET, REWARD_MODEL)
    # Direct part Σ_a π(a)·q̂(a) = q̂(x, 0) = .5, .8, .2, 1.
    # Correction w·(r − q̂(x, a)): 2·(1 − .5) = 1, 0·(.5 − .2) = 0, 4·(0 − .2) = −.8, 0·(1 − 0) = 0.
    # Terms 1.5, .8, −.6, 1 → value 2.7/4 = .675; deviations .825, .125, −1.275, .325,
    # Σ² = .680625 + .015625 + 1.625625 + .105625 = 2.4275 → stderr = √(2.4275/3)/2 ≈ .44977.
    assert estimate.value == pytest.approx(0.675)
    assert estimate.stderr == pytest.approx(math.sqrt(2.4275 / 3) / 2)
    assert estimate.effective_sample_size == pytest.approx(1.8)
    _check_interval(estimate)


def test_stochastic_target_on_a_cost_outcome() -> None:
    # Costs are not in [0, 1]; the estimators must not care.
    actions = np.array([0, 1, 1])
    cost = np.array([3.0, 1.0, 5.0])
    propensities = np.array([0.5, 0.25, 0.5])
    target = np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    model = np.array([[2.0, 2.0], [1.0, 2.0], [4.0, 4.0]])
    result = evaluate_policy(actions, cost, propensities, target, model)
    assert set(result) == {"ips", "snips", "dr"}
    # w = .2/.5, .5/.25, 0/.5 = .4, 2, 0; IPS terms .4·3, 2·1, 0 = 1.2, 2, 0 → 3.2/3.
    assert result["ips"].value == pytest.approx(3.2 / 3)
    # SNIPS = 3.2 / (.4 + 2) = 4/3.
    assert result["snips"].value == pytest.approx(4 / 3)
    # Direct .2·2 + .8·2 = 2, .5·1 + .5·2 = 1.5, 4; correction .4·(3 − 2) = .4, 2·(1 − 2) = −2, 0.
    # Terms 2.4, −.5, 4 → 5.9/3.
    assert result["dr"].value == pytest.approx(5.9 / 3)
    # ESS = 2.4²/(.16 + 4) = 5.76/4.16.
    assert result["ips"].effective_sample_size == pytest.approx(5.76 / 4.16)
    assert result["dr"] == doubly_robust(actions, cost, propensities, target, model)


def test_target_equal_to_a_certain_logging_policy_gives_the_mean_outcome() -> None:
    rewards = np.array([0.2, 0.9, 0.4, 0.7, 1.0])
    actions = np.array([0, 2, 1, 2, 0])
    ones = np.ones(5)
    target = one_hot(actions, 3)
    for estimate in (ips(actions, rewards, ones, target), snips(actions, rewards, ones, target)):
        # w = 1 everywhere: both are the plain mean 3.2/5 with the plain standard error.
        assert estimate.value == pytest.approx(0.64)
        assert estimate.stderr == pytest.approx(rewards.std(ddof=1) / math.sqrt(5))
        assert estimate.effective_sample_size == pytest.approx(5.0)
    dr = doubly_robust(actions, rewards, ones, target, np.full((5, 3), 0.3))
    assert dr.value == pytest.approx(0.64)  # .3 + (r − .3): the model cancels out


def test_snips_is_invariant_to_scaling_all_propensities() -> None:
    base = snips(ACTIONS, REWARDS, PROPENSITIES, TARGET)
    scaled = snips(ACTIONS, REWARDS, PROPENSITIES * 0.5, TARGET)
    assert scaled.value == pytest.approx(base.value)
    assert scaled.stderr == pytest.approx(base.stderr)
    assert scaled.effective_sample_size == pytest.approx(base.effective_sample_size)
    # IPS is not: halving every propensity doubles it.
    assert ips(ACTIONS, REWARDS, PROPENSITIES * 0.5, TARGET).value == pytest.approx(1.0)


def test_doubly_robust_with_an_exact_model_has_no_variance() -> None:
    arm_means = np.array([0.2, 0.5, 0.9])
    actions = np.array([0, 1, 2, 1, 0, 2, 2, 1])
    rewards = arm_means[actions]  # deterministic outcomes, so q̂ = arm_means is exact
    propensities = np.array([0.1, 0.3, 0.6, 0.3, 0.1, 0.6, 0.6, 0.3])
    target = one_hot(np.full(8, 2), 3)
    estimate = doubly_robust(actions, rewards, propensities, target, np.tile(arm_means, (8, 1)))
    # Every term is q̂(x, 2) + w·0 = .9, whatever the propensities.
    assert estimate.value == pytest.approx(0.9)
    assert estimate.stderr == pytest.approx(0.0, abs=1e-12)
    assert estimate.low == pytest.approx(estimate.high)
    assert ips(actions, rewards, propensities, target).stderr > 0.1


def _simulate(rng: np.random.Generator, n: int) -> tuple[dict[str, OffPolicyEstimate], float]:
    """K = 4 arms, two kinds of prompt, uniform logging; target = the best arm per kind."""
    means = np.array([[0.2, 0.5, 0.7, 0.4], [0.6, 0.3, 0.1, 0.8]])
    kind = rng.integers(0, 2, size=n)
    actions = rng.integers(0, 4, size=n)
    rewards = rng.binomial(1, means[kind, actions]).astype(np.float64)
    target = one_hot(np.where(kind == 0, 2, 3), 4)
    # A biased reward model: DR must stay unbiased through the IPS correction.
    model = np.clip(means[kind] + 0.1, 0.0, 1.0)
    true_value = 0.5 * (0.7 + 0.8)
    return evaluate_policy(actions, rewards, np.full(n, 0.25), target, model), true_value


def test_simulation_recovers_the_true_value() -> None:
    # IPS's per-row sd is about √(4·.75 − .75²) ≈ 1.56, so 200k rows give stderr ≈ .0035 and the .01
    # tolerance is about 3 standard errors (20k rows would make it one, a coin flip on the seed).
    result, true_value = _simulate(np.random.default_rng(20240601), 200_000)
    for name, estimate in result.items():
        assert abs(estimate.value - true_value) < 0.01, name
        assert estimate.low <= true_value <= estimate.high, name
        assert estimate.effective_sample_size == pytest.approx(50_000, rel=0.02)  # n/K with w ∈ {0, 4}
    assert result["dr"].stderr < result["ips"].stderr


def test_intervals_cover_the_true_value_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    runs = 300
    covered = dict.fromkeys(("ips", "snips", "dr"), 0)
    for _ in range(runs):
        result, true_value = _simulate(rng, 2_000)
        for name, estimate in result.items():
            covered[name] += estimate.low <= true_value <= estimate.high
    # Binomial(300, .95) has sd ≈ 3.8 runs; [.9, .99] is beyond 3 sd either side.
    for name, count in covered.items():
        assert 0.9 <= count / runs <= 0.99, (name, count)


@st.composite
def logged_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 30))
    k = draw(st.integers(1, 4))
    actions = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    outcome = np.array(draw(st.lists(st.integers(-1000, 1000).map(lambda i: i / 100), min_size=n, max_size=n)))
    propensities = np.array(draw(st.lists(st.integers(1, 100).map(lambda i: i / 100), min_size=n, max_size=n)))
    raw = np.array(draw(st.lists(st.integers(0, 10), min_size=n * k, max_size=n * k)), dtype=float).reshape(n, k)
    raw[raw.sum(axis=1) == 0, 0] = 1.0
    return actions, outcome, propensities, raw / raw.sum(axis=1, keepdims=True)


@PROPERTY_SETTINGS
@given(logged_data())
def test_snips_stays_within_the_outcomes_and_ess_within_one_and_n(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    actions, outcome, propensities, target = data
    estimate = ips(actions, outcome, propensities, target)
    assert 0.0 <= estimate.effective_sample_size <= estimate.n * (1 + 1e-9)
    if estimate.effective_sample_size == 0.0:
        return  # no overlap: SNIPS is undefined (tested below)
    assert estimate.effective_sample_size >= 1.0 - 1e-9
    self_normalised = snips(actions, outcome, propensities, target)
    assert outcome.min() - 1e-9 <= self_normalised.value <= outcome.max() + 1e-9
    halved = snips(actions, outcome, propensities / 2, target)
    assert halved.value == pytest.approx(self_normalised.value)


@PROPERTY_SETTINGS
@given(logged_data())
def test_doubly_robust_with_a_zero_model_is_ips_and_intervals_are_centred(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    actions, outcome, propensities, target = data
    plain = ips(actions, outcome, propensities, target)
    dr = doubly_robust(actions, outcome, propensities, target, np.zeros_like(target))
    assert dr.value == pytest.approx(plain.value)
    assert dr.stderr == pytest.approx(plain.stderr)
    for estimate in (plain, dr):
        assert estimate.low <= estimate.value <= estimate.high
        assert estimate.high - estimate.low == pytest.approx(2 * Z_95 * estimate.stderr)


def test_snips_without_overlap_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="probability 0 to every logged action"):
        snips([0, 0], [1.0, 0.0], [0.5, 0.5], one_hot([1, 1], 2))


GOOD = {
    "logged_actions": ACTIONS,
    "outcome": REWARDS,
    "propensities": PROPENSITIES,
    "target_probabilities": TARGET,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"target_probabilities": TARGET[:1], "logged_actions": [0], "outcome": [1.0], "propensities": [1.0]},
            "at least 2 logged rows",
        ),
        ({"target_probabilities": np.array([0.5, 0.5])}, r"\(n, K\) matrix"),
        ({"target_probabilities": np.full((4, 2), 0.6)}, "must sum to 1"),
        ({"target_probabilities": np.array([[1.5, -0.5]] * 4)}, "finite and >= 0"),
        ({"logged_actions": [0, 1, 0]}, "logged_actions has 3 rows but target_probabilities has 4"),
        ({"logged_actions": [0, 1, 2, 1]}, r"logged_actions must be in \[0, 2\)"),
        ({"logged_actions": [0.0, 1.0, 0.0, 1.0]}, "integer candidate indices"),
        ({"outcome": [1.0, np.nan, 0.0, 1.0]}, "outcome must be finite.*unknown"),
        ({"outcome": REWARDS[:3]}, "outcome has 3 rows"),
        ({"propensities": [0.5, 0.0, 0.25, 0.8]}, r"propensities must be in \(0, 1\]"),
        ({"propensities": [0.5, 1.2, 0.25, 0.8]}, r"propensities must be in \(0, 1\]"),
        ({"propensities": np.ones((4, 1))}, "propensities must be a 1-D array"),
    ],
)
def test_invalid_inputs_say_what_to_fix(change: dict[str, object], message: str) -> None:
    arguments = {**GOOD, **change}
    for estimator in (ips, snips):
        with pytest.raises(ValueError, match=message):
            estimator(**arguments)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        doubly_robust(**arguments, reward_model=REWARD_MODEL)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "message"),
    [(REWARD_MODEL[:, :1], "reward_model must have the shape"), (np.full((4, 2), np.inf), "reward_model must be")],
)
def test_invalid_reward_model(model: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_policy(ACTIONS, REWARDS, PROPENSITIES, TARGET, model)


def test_one_hot_rejects_bad_actions() -> None:
    with pytest.raises(ValueError, match=r"actions must be in \[0, 2\)"):
        one_hot([0, 2], 2)
    with pytest.raises(ValueError, match=r"k .* must be >= 1"):
        one_hot([0], 0)
