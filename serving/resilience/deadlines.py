"""The deadlines of one upstream call (`routeiq_settings.limits`): total, time to first byte, and the gap
between stream events. A client's timeouts bound each read; these bound the call. Timing only: no HTTP here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

from serving.exceptions import UpstreamDeadlineError
from serving.resilience.settings import LimitSettings

SETTINGS_KEY: Final = "routeiq_settings.limits"
_MISSED: Final = {
    "total_seconds": "did not finish its answer within",
    "first_byte_seconds": "sent no first byte within",
    "chunk_gap_seconds": "sent nothing mid-stream for",
}


class Deadlines:
    """Started when the upstream request is sent (inside the running loop); each `async with` bounds one wait
    by the earliest deadline that applies to it and raises `UpstreamDeadlineError` naming that deadline."""

    def __init__(self, limits: LimitSettings, where: str) -> None:
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self._limits = limits
        self._where = where
        started = loop.time()
        self._total = _after(started, limits.total_seconds)
        self._first_byte = _after(started, limits.first_byte_seconds)

    def total(self) -> AbstractAsyncContextManager[None]:
        """A whole non-streamed call."""
        return self._within([(self._total, "total_seconds")])

    def first_byte(self) -> AbstractAsyncContextManager[None]:
        """Waiting for the upstream's head and first bytes of a stream."""
        return self._within([(self._first_byte, "first_byte_seconds"), (self._total, "total_seconds")])

    def next_event(self) -> AbstractAsyncContextManager[None]:
        """Waiting for the next bytes of a started stream."""
        gap = _after(self._clock(), self._limits.chunk_gap_seconds)
        return self._within([(gap, "chunk_gap_seconds"), (self._total, "total_seconds")])

    @asynccontextmanager
    async def _within(self, deadlines: list[tuple[float | None, str]]) -> AsyncIterator[None]:
        found = [(when, name) for when, name in deadlines if when is not None]
        when, name = min(found) if found else (None, "")
        scope = asyncio.timeout_at(when)
        try:
            async with scope:
                yield
        except TimeoutError as exc:
            if not scope.expired():
                raise  # a timeout of the HTTP client, not ours
            raise UpstreamDeadlineError(self._message(name)) from exc

    def _message(self, name: str) -> str:
        seconds = getattr(self._limits, name)
        return (
            f"{self._where} {_MISSED[name]} {seconds} s ({SETTINGS_KEY}.{name}); retry, or pick a faster model "
            "(operators: raise the deadline for slow models)."
        )


def _after(start: float, seconds: float | None) -> float | None:
    return None if seconds is None else start + seconds
