"""`GET /_health/live` and `GET /_health/ready`: alive, and ready to serve (providers configured, the first
registry poll done — with a router loaded, or the fallback serving and saying why)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from serving.openapi_spec import Live, Readiness, responses
from serving.state import GatewayStateDep

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
    polled = champion.polls > 0
    router: dict[str, Any] = {
        "learned": state.config.learned,
        "loaded": champion.active is not None,
        "version": champion.active.version if champion.active else None,
        "mode": "router" if champion.active is not None else "fallback",
    }
    checks = {"providers": len(state.providers.names) > 0, "registry_polled": polled or not state.config.learned}
    ok = all(checks.values())
    body = {"status": "ready" if ok else "starting", "checks": checks, "router": router}
    return JSONResponse(body, status_code=200 if ok else 503)
