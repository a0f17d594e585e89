"""The circuit breaker's state machine on an injected clock: opens after `failures` in a row, skips while
cooling down, lets exactly one trial through, and closes or reopens on its verdict."""

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
    return Breakers(BreakerSettings.model_validate({"failures": 3, "cooldown_seconds": 10, **settings}), clock), clock


def test_it_opens_only_after_failures_in_a_row() -> None:
    breakers, _ = _breakers()
    assert [breakers.failed("m") for _ in range(2)] == [False, False]
    breakers.succeeded("m")  # an answer restarts the count
    assert [breakers.failed("m") for _ in range(3)] == [False, False, True]
    assert breakers.state("m") == OPEN and not breakers.admit("m")
    assert breakers.admit("other") and breakers.states() == {"m": OPEN}


def test_after_the_cooldown_one_trial_decides() -> None:
    breakers, clock = _breakers()
    for _ in range(3):
        breakers.failed("m")
    clock.now += 9.5
    assert not breakers.admit("m") and breakers.retry_after("m") == 0.5
    clock.now += 0.5
    assert breakers.state("m") == HALF_OPEN
    assert breakers.admit("m")  # the trial
    assert not breakers.admit("m")  # everyone else waits for its verdict
    assert breakers.failed("m")  # the trial failed: open again, for a full cooldown
    assert breakers.state("m") == OPEN and breakers.retry_after("m") == 10
    clock.now += 10
    assert breakers.admit("m")
    breakers.succeeded("m")
    assert breakers.state("m") == CLOSED and breakers.admit("m") and breakers.states() == {}


def test_an_abandoned_trial_lets_the_next_call_try() -> None:
    breakers, clock = _breakers()
    for _ in range(3):
        breakers.failed("m")
    clock.now += 10
    assert breakers.admit("m")
    breakers.abandoned("m")  # the client left: no verdict
    assert breakers.admit("m")


def test_disabled_breakers_admit_everything() -> None:
    breakers, _ = _breakers(enabled=False)
    assert not any(breakers.failed("m") for _ in range(10))
    assert breakers.admit("m") and breakers.state("m") == CLOSED
