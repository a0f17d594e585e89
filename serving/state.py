"""What one running gateway holds, on `app.state.gateway`, and the dependency alias routes use to get it.

Built by the app lifespan; nothing here starts or stops anything.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from serving.access.guard import AccessControl
from serving.config import GatewayConfig
from serving.metrics import GatewayMetrics
from serving.providers.providers import Providers
from serving.resilience.failover import Failover
from serving.responses import RecentResponses
from serving.routing.policy import RoutingPolicy
from serving.routing.poller import RegistryPoller
from serving.routing.slots import RouterSlot
from serving.security.scrub import Scrubber
from serving.telemetry.tracing import Telemetry


@dataclass
class GatewayState:
    """The gateway's parts; the slots inside the policy are swapped by the poller."""

    config: GatewayConfig
    providers: Providers
    failover: Failover
    """Every upstream call of a route goes through it: retries, fallbacks, circuit breakers."""
    telemetry: Telemetry
    metrics: GatewayMetrics
    policy: RoutingPolicy
    poller: RegistryPoller
    responses: RecentResponses
    access: AccessControl
    started_at: float = field(default_factory=time.time)
    poll_task: asyncio.Task[None] | None = None
    scrubber: Scrubber = field(default_factory=Scrubber)
    """Removes secrets (patterns and this config's keys) from what spans, logs and audit entries record."""

    @property
    def slots(self) -> tuple[RouterSlot, ...]:
        return self.poller.slots


async def get_state(request: Request) -> GatewayState:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop on every request."""
    state: GatewayState = request.app.state.gateway
    return state


GatewayStateDep = Annotated[GatewayState, Depends(get_state)]
