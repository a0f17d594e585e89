"""The circuit breaker's state machine on an injected clock: opens after `failures` in a row (from `min_callers`
distinct callers), skips while cooling down, lets exactly one trial through, and closes or reopens on its verdict."""

from __future__ import annotations

from serving.resilience.breaker import CLOSED, HALF_OPEN, OPEN, Breakers
from serving.resilience.settings import BreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breakers(**settings: object) -> tuple[Breakers, Clock]:
    clock = Clock()
    return Breakers(
        BreakerSettings.model_validate({"failures": 3, "cooldown_seconds": 10, "min_callers": 1, **settings}), clock
    ), clock


def test_it_opens_only_after_failures_in_a_row() -> None:
    breakers, _ = _breakers()
    assert [breakers.failed("m", "k") for _ in range(2)] == [False, False]
    breakers.succeeded("m")  # an answer restarts the count
    assert [breakers.failed("m", "k") for _ in range(3)] == [False, False, True]
    assert breakers.state("m") == OPEN and not breakers.admit("m")
    assert breakers.admit("other") and breakers.states() == {"m": OPEN}


def test_after_the_cooldown_one_trial_decides() -> None:
    breakers, clock = _breakers()
    for _ in range(3):
        breakers.failed("m", "k")
    clock.now += 9.5
    assert not breakers.admit("m") and breakers.retry_after("m") == 0.5
    clock.now += 0.5
    assert breakers.state("m") == HALF_OPEN
    assert breakers.admit("m")  # the trial
    assert not breakers.admit("m")  # everyone else waits for its verdict
    assert breakers.failed("m", "k")  # the trial failed: open again, for a full cooldown
    assert breakers.state("m") == OPEN and breakers.retry_after("m") == 10
    clock.now += 10
    assert breakers.admit("m")
    breakers.succeeded("m")
    assert breakers.state("m") == CLOSED and breakers.admit("m") and breakers.states() == {}


def test_an_abandoned_trial_lets_the_next_call_try() -> None:
    breakers, clock = _breakers()
    for _ in range(3):
        breakers.failed("m", "k")
    clock.now += 10
    assert breakers.admit("m")
    breakers.abandoned("m")  # the client left: no verdict
    assert breakers.admit("m")


def test_disabled_breakers_admit_everything() -> None:
    breakers, _ = _breakers(enabled=False)
    assert not any(breakers.failed("m", "k") for _ in range(10))
    assert breakers.admit("m") and breakers.state("m") == CLOSED


def test_one_callers_failures_alone_never_open_a_shared_circuit() -> None:
    breakers, _ = _breakers(min_callers=2)
    assert not any(breakers.failed("m", "attacker") for _ in range(50))
    assert breakers.state("m") == CLOSED and breakers.admit("m")
    assert breakers.failed("m", "someone else")  # a second caller failing too: the upstream is down
    assert breakers.state("m") == OPEN


def test_an_answer_between_failures_restarts_the_count_and_the_callers() -> None:
    breakers, _ = _breakers(min_callers=2)
    breakers.failed("m", "a")
    breakers.failed("m", "a")
    breakers.succeeded("m")
    assert not breakers.failed("m", "b") and not breakers.failed("m", "b")
    assert breakers.failed("m", "c")


def test_failed_trials_from_one_caller_do_not_reopen_the_circuit() -> None:
    breakers, clock = _breakers(min_callers=2)
    for caller in ("a", "b", "a"):
        breakers.failed("m", caller)
    assert breakers.state("m") == OPEN
    clock.now += 10
    for _ in range(3):
        assert breakers.admit("m") and not breakers.failed("m", "attacker")
    assert breakers.state("m") == HALF_OPEN and breakers.admit("m")
    assert breakers.failed("m", "another caller")  # two distinct callers' trials failed: open again
    assert breakers.state("m") == OPEN and breakers.retry_after("m") == 10


def test_the_upstream_view_shows_the_circuit_and_its_last_failure() -> None:
    breakers, _ = _breakers()
    assert breakers.upstream("m") == {
        "circuit": CLOSED,
        "failures_in_a_row": 0,
        "retry_after_seconds": 0.0,
        "last_failure": None,
    }
    for _ in range(3):
        breakers.failed("m", "k", "upstream_timeout")
    shown = breakers.upstream("m")
    assert shown["circuit"] == OPEN and shown["failures_in_a_row"] == 3 and shown["retry_after_seconds"] == 10
    assert shown["last_failure"]["code"] == "upstream_timeout"
    breakers.succeeded("m")
    assert breakers.upstream("m")["circuit"] == CLOSED and breakers.upstream("m")["last_failure"] is not None
