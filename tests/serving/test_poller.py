"""The registry poller says when nothing is registered at the reference it watches: once when that starts,
not on every poll, and again after it changes (it used to log nothing, so a typo served the fallback silently)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from registry.reference import parse_reference
from registry.tracking import tracking_uri
from serving.app import registry_client
from serving.routing.poller import RegistryPoller
from serving.routing.slots import CHAMPION, EMPTY, PollResult, RouterSlot
from serving.settings import RoutingSettings

REFERENCE = "models:/routeiq-no-such-router@champion"


async def _noop(slot: RouterSlot, result: PollResult) -> None:
    return None


def test_an_empty_reference_is_logged_once_per_change(mlflow_workspace: Path, caplog: pytest.LogCaptureFixture) -> None:
    slot = RouterSlot(CHAMPION, parse_reference(REFERENCE))
    uri = tracking_uri()
    poller = RegistryPoller(
        [slot], RoutingSettings(reference=REFERENCE), ["a", "b"], lambda: registry_client(uri), _noop
    )
    caplog.set_level(logging.WARNING, logger="routeiq.gateway.poller")

    asyncio.run(poller.poll_once())
    asyncio.run(poller.poll_once())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert slot.last_poll is not None and slot.last_poll.status == EMPTY and slot.polls == 2
    assert len(warnings) == 1, warnings
    assert REFERENCE in warnings[0] and "routeiq promote" in warnings[0] and "routing.reference" in warnings[0]

    slot.last_poll = PollResult.now("failed", None, "the registry was unreachable")
    asyncio.run(poller.poll_once())
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
