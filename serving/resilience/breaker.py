"""Circuit breakers, one per deployment name: closed → open after `failures` upstream failures in a row from at
least `min_callers` distinct callers → half-open after `cooldown_seconds`, when one trial call at a time decides:
an answer closes it, failed trials from `min_callers` distinct callers reopen it. State and clock only; it never
calls anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from serving.resilience.settings import BreakerSettings

State = Literal["closed", "open", "half_open"]
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    callers: set[str] = field(default_factory=set)
    """Distinct callers of the failures in a row (closed) or of the failed trials (half-open), up to min_callers."""
    opened_at: float | None = None
    trial: bool = False
    """A half-open trial call is in flight: other calls keep skipping the deployment until it ends."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A deployment's last upstream failure: when (Unix time) and its error code."""

    at: float
    code: str


class Breakers:
    """The breakers of one gateway. Every method runs without awaiting, so on the event loop each transition is
    atomic. A call `admit`ted must end in exactly one of `succeeded`, `failed` or `abandoned`."""

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._last: dict[str, Failure] = {}

    def admit(self, name: str) -> bool:
        """Whether a call to `name` may go ahead now (an open circuit past its cooldown admits one trial)."""
        if not self._settings.enabled:
            return True
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return True
        if circuit.trial or self._clock() - circuit.opened_at < self._settings.cooldown_seconds:
            return False
        circuit.trial = True
        return True

    def succeeded(self, name: str) -> None:
        """The call answered: the circuit closes and its failure count restarts."""
        self._circuits.pop(name, None)

    def failed(self, name: str, caller: str, code: str = "upstream_error") -> bool:
        """The upstream failed `caller`'s call (`code`: the error's code); True when this opened (or reopened)
        the circuit. One caller's failures alone never open it unless `min_callers` is 1."""
        self._last[name] = Failure(time.time(), code)
        if not self._settings.enabled:
            return False
        circuit = self._circuits.setdefault(name, _Circuit())
        if circuit.opened_at is not None and not circuit.trial:
            return False  # admitted before the circuit opened: its verdict is in already
        circuit.failures += 1
        needed = self._settings.min_callers
        if len(circuit.callers) < needed:
            circuit.callers.add(caller)
        enough = len(circuit.callers) >= needed
        if circuit.trial:
            circuit.trial = False  # without enough callers it stays half-open: the next call is a new trial
        elif circuit.failures < self._settings.failures:
            return False
        if not enough:
            return False
        circuit.opened_at = self._clock()
        circuit.callers = set()
        return True

    def abandoned(self, name: str) -> None:
        """The call ended with no verdict on the upstream (the client left, or the request itself was refused)."""
        circuit = self._circuits.get(name)
        if circuit is not None:
            circuit.trial = False

    def state(self, name: str) -> State:
        """`closed`, `open` (skipped) or `half_open` (cooled down, or its trial call in flight)."""
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return CLOSED
        if circuit.trial or self._clock() - circuit.opened_at >= self._settings.cooldown_seconds:
            return HALF_OPEN
        return OPEN

    def states(self) -> dict[str, str]:
        """The state of every name that failed since it last answered."""
        return {name: self.state(name) for name in list(self._circuits)}

    def retry_after(self, name: str) -> float:
        """Seconds until an open circuit lets a trial call through (0 when it would now)."""
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return 0.0
        return max(0.0, circuit.opened_at + self._settings.cooldown_seconds - self._clock())

    def upstream(self, name: str) -> dict[str, Any]:
        """What readiness shows of deployment `name`: its circuit state and its last upstream failure."""
        last = self._last.get(name)
        circuit = self._circuits.get(name)
        return {
            "circuit": self.state(name),
            "failures_in_a_row": circuit.failures if circuit is not None else 0,
            "retry_after_seconds": round(self.retry_after(name), 3),
            "last_failure": None if last is None else {"at": last.at, "code": last.code},
        }
