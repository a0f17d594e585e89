"""Circuit breakers, one per deployment name: closed → open after `failures` upstream failures in a row →
half-open after `cooldown_seconds`, when one trial call closes it again (or reopens it). State and clock only;
it never calls anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from serving.resilience.settings import BreakerSettings

State = Literal["closed", "open", "half_open"]
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False
    """A half-open trial call is in flight: other calls keep skipping the deployment until it ends."""


class Breakers:
    """The breakers of one gateway. Every method runs without awaiting, so on the event loop each transition is
    atomic. A call `admit`ted must end in exactly one of `succeeded`, `failed` or `abandoned`."""

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

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

    def failed(self, name: str) -> bool:
        """The upstream failed the call; True when this opened (or reopened) the circuit."""
        if not self._settings.enabled:
            return False
        circuit = self._circuits.setdefault(name, _Circuit())
        circuit.failures += 1
        if circuit.trial or (circuit.opened_at is None and circuit.failures >= self._settings.failures):
            circuit.opened_at = self._clock()
            circuit.trial = False
            return True
        return False

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
