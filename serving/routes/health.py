"""`GET /_health/live` and `GET /_health/ready`: alive, and ready to serve (providers configured, the first
registry poll done — with a router loaded, or the fallback serving and saying why)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from serving.openapi_spec import Live, Readiness, responses
from serving.state import GatewayState, GatewayStateDep

router = APIRouter()


@router.get("/_health/live", response_model=None, responses=responses(Live))
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/_health/ready",
    responses={
        **responses(Readiness),
        503: {"model": Readiness, "description": "Starting: the same body, not ready yet"},
    },
)
async def ready(state: GatewayStateDep) -> Response:
    champion = state.policy.champion
    learned = state.config.learned
    routing = state.config.settings.routing
    router: dict[str, Any] = {
        "learned": learned,
        "loaded": champion.active is not None,
        "version": champion.active.version if champion.active else None,
        "mode": "router" if champion.active is not None else "fallback",
        "fallback_reason": fallback_reason(state),
    }
    checks = {
        "providers": len(state.providers.names) > 0,
        "registry_polled": champion.polls > 0 or not learned,
    }
    if routing.require_router:
        checks["router_loaded"] = champion.active is not None
    ok = all(checks.values())
    breakers = state.failover.breakers
    upstreams = {name: breakers.upstream(name) for name in state.providers.names}
    body = {"status": "ready" if ok else "starting", "checks": checks, "router": router, "upstreams": upstreams}
    return JSONResponse(body, status_code=200 if ok else 503)


def fallback_reason(state: GatewayState) -> str | None:
    """Why the virtual model is routed by the fallback (None when a learned router decides)."""
    if not state.config.learned:
        return f"routing_strategy {state.config.routing_strategy!r} is not a learned router (llmrouter-<family>)"
    return state.policy.champion.fallback_reason()
