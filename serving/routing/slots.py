"""A watched registry reference (champion or challenger), the router loaded from it, and its last poll.

Plain state on `app.state`; the poller writes it on the event loop, request handlers only read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from registry.reference import Reference
from serving.routing.loader import ActiveRouter

CHAMPION = "champion"
CHALLENGER = "challenger"

LOADED = "loaded"
UNCHANGED = "unchanged"
EMPTY = "empty"
FAILED = "failed"
"""Poll outcomes: a new version swapped in, the same version again, nothing registered there, an error."""


@dataclass(frozen=True)
class PollResult:
    """One poll of one slot."""

    status: str
    version: int | None
    message: str
    at: float

    @classmethod
    def now(cls, status: str, version: int | None, message: str) -> PollResult:
        return cls(status=status, version=version, message=message, at=time.time())


class RouterSlot:
    """One reference and what serves from it; `active` is swapped whole, so readers see old or new."""

    def __init__(self, name: str, reference: Reference) -> None:
        self.name = name
        self.reference = reference
        self.active: ActiveRouter | None = None
        self.last_poll: PollResult | None = None
        self.polls = 0

    def fallback_reason(self) -> str | None:
        """Why the fallback serves instead of this slot's router (None while a router is loaded)."""
        if self.active is not None:
            return None
        if self.last_poll is None:
            return f"{self.reference.raw} has not been polled yet"
        return f"no router loaded from {self.reference.raw}: {self.last_poll.message}"

    def describe(self) -> dict[str, Any]:
        """The slot as /admin/router shows it."""
        active = self.active
        poll = self.last_poll
        return {
            "reference": self.reference.raw,
            "version": active.version if active else None,
            "family": active.family if active else None,
            "candidates": list(active.candidates) if active else [],
            "feature_spec": active.feature_spec if active else None,
            "loaded_at": active.loaded_at if active else None,
            "polls": self.polls,
            "last_poll": None
            if poll is None
            else {"status": poll.status, "version": poll.version, "message": poll.message, "at": poll.at},
        }
