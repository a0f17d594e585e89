"""The closed loop on the `two` profile, the most common deployment: one strong model (gpt-4-1106-preview) and
one cheap one (mixtral-8x7b), prompts sent three times each. Every logged request counts as an event in the
off-policy estimates, the family is chosen by its interval, and the promoted router beats the logging policy
live, at the profile's λ, on held-apart prompts. Real processes, DVC, MLflow, DuckDB, Optuna."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipelines.closed_loop import LoopOutcome, profile, run_loop
from pipelines.loop_report import PolicyResult

REPO = Path(__file__).resolve().parents[2]
PROFILE = "two"

pytestmark = pytest.mark.slow


def _step(number: int, title: str, work: Callable[[], Any]) -> Any:
    return work()


@pytest.fixture(scope="module")
def outcome(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LoopOutcome:
    return run_loop(REPO, data_dir, tmp_path_factory.mktemp("loop-two"), PROFILE, _step)


def utility(result: PolicyResult, cost_weight: float) -> float:
    return result.quality - cost_weight * result.cost_per_1k / 1000


def test_the_promoted_router_beats_the_logging_policy_live(outcome: LoopOutcome) -> None:
    cost_weight = float(profile(PROFILE, REPO)["cost_weight"])
    logging, live = outcome.results[0], outcome.results[1]
    assert outcome.promotion.version is not None, outcome.promotion.verdict
    assert outcome.live.failed == 0 and outcome.logged.failed == 0
    assert utility(live, cost_weight) > utility(logging, cost_weight), (live, logging)
    assert set(logging.shares) == {"gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"}


def test_every_logged_request_is_an_event_and_the_promotion_cleared_its_interval(outcome: LoopOutcome) -> None:
    family = outcome.promotion.family
    assert family is not None
    validation = outcome.evaluation["validation"]
    ahead = {f: m for f, m in validation.items() if m["test_dr_advantage"] > 0}
    assert family == max(ahead, key=lambda f: ahead[f]["test_dr_advantage_low"])  # the best lower bound
    test = outcome.evaluation["families"][family]
    assert test["test_dr_advantage_low"] > 0.0  # the gate: the whole interval on the unseen split
    # Prompts were sent three times: the test split's events outnumber its prompts about three to one.
    assert test["test_ope_samples"] >= 2.5 * test["test_ope_prompts"]
    assert test["test_ope_effective_samples"] > 100
    assert outcome.evaluation["verdict"].startswith(f"chose {family}")
