"""`limits.max_in_flight_per_key`: how many requests of one API key are served at once, so one key's slow or
trickled requests cannot fill `max_in_flight` for every other key. Counting only: the admission middleware opens
a `KeyHold` per request and releases it when the response ends (a stream: its last byte); intake takes it for
the caller's key once the key is authenticated, before the body is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from serving.exceptions import TooManyInFlightError

HOLD: Final = "key_hold"
"""Where the request's `KeyHold` is kept on `request.state` (the ASGI scope's `state`)."""


@dataclass
class KeyInFlight:
    """Requests in flight per key id (the master key counts as one key); `limit` 0 counts nothing."""

    limit: int
    retry_after: int
    counts: dict[str, int] = field(default_factory=dict)

    def enter(self, key: str) -> None:
        """Count one more request of `key`; 429 `too_many_in_flight` when it already has `limit`."""
        held = self.counts.get(key, 0)
        if held >= self.limit:
            raise TooManyInFlightError(self.limit, self.retry_after)
        self.counts[key] = held + 1

    def leave(self, key: str) -> None:
        left = self.counts.get(key, 1) - 1
        if left > 0:
            self.counts[key] = left
        else:
            self.counts.pop(key, None)


class KeyHold:
    """One request's place in its key's count: taken at most once, released once when the response ends."""

    def __init__(self, counts: KeyInFlight) -> None:
        self._counts = counts
        self._key: str | None = None

    def take(self, key: str) -> None:
        """Count this request against `key` (429 when the key is at its limit); a second call does nothing."""
        if self._key is None and self._counts.limit > 0:
            self._counts.enter(key)
            self._key = key

    def release(self) -> None:
        if self._key is not None:
            self._counts.leave(self._key)
            self._key = None
