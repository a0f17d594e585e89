"""The registry poller: resolve each watched reference, load a new version off the event loop, swap it in.

A failed load keeps the old router; every outcome is recorded on the slot and reported to a callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from registry.reference import resolve
from serving.routing.loader import ActiveRouter, RouterLoadError, load_router
from serving.routing.slots import EMPTY, FAILED, LOADED, UNCHANGED, PollResult, RouterSlot
from serving.settings import RoutingSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger("routeiq.gateway.poller")

OnPoll = Callable[[RouterSlot, PollResult], Awaitable[None]]


class RegistryPoller:
    """Polls every slot each `poll_interval_seconds` (once at start when hot reload is off)."""

    def __init__(
        self,
        slots: Sequence[RouterSlot],
        routing: RoutingSettings,
        served: Sequence[str],
        client: Callable[[], MlflowClient],
        on_poll: OnPoll,
    ) -> None:
        self.slots = tuple(slots)
        self.routing = routing
        self.served = tuple(served)
        self._client = client
        self._on_poll = on_poll

    async def poll_once(self) -> None:
        """Poll every slot once; loading runs in a worker thread, the swap happens here on the loop."""
        for slot in self.slots:
            result, router = await asyncio.to_thread(self._check, slot)
            if router is not None:
                slot.active = router
            slot.last_poll = result
            slot.polls += 1
            await self._on_poll(slot, result)

    async def run(self) -> None:
        """Poll until cancelled; the first poll has already run in `poll_once` at start-up."""
        if not self.routing.hot_reload or not any(s.reference.moves for s in self.slots):
            return
        while True:
            await asyncio.sleep(self.routing.poll_interval_seconds)
            try:
                await self.poll_once()
            except Exception:  # a poll must never kill the poller; the next one tries again
                log.exception("registry poll failed")

    def _check(self, slot: RouterSlot) -> tuple[PollResult, ActiveRouter | None]:
        try:
            version = None if slot.reference.directory else resolve(slot.reference, self._client())
        except Exception as exc:
            log.warning("%s: cannot resolve %s: %s", slot.name, slot.reference.raw, exc)
            return PollResult.now(FAILED, None, f"cannot resolve {slot.reference.raw}: {exc}"), None
        if slot.reference.directory is None and version is None:
            message = f"nothing registered at {slot.reference.raw} yet"
            if slot.last_poll is None or slot.last_poll.status != EMPTY:
                # Once per change, not every poll: a typo in the reference would otherwise fill the log.
                log.warning(
                    "%s: %s; the fallback serves until a version is promoted there "
                    "(`routeiq promote`, or check routeiq_settings.routing.reference)",
                    slot.name,
                    message,
                )
            return PollResult.now(EMPTY, None, message), None
        current = slot.active
        if current is not None and current.version == version:
            return PollResult.now(UNCHANGED, version, f"version {current.label} is current"), None
        try:
            router = load_router(slot.reference, version, self.routing, self.served)
        except RouterLoadError as exc:
            kept = f"; still serving version {current.label}" if current else ""
            log.warning("%s: %s%s", slot.name, exc, kept)
            return PollResult.now(FAILED, version, f"{exc}{kept}"), None
        previous = f" (was {current.label})" if current else ""
        log.info("%s: loaded %s router version %s%s", slot.name, router.family, router.label, previous)
        return PollResult.now(LOADED, version, f"loaded {router.family} version {router.label}{previous}"), router
