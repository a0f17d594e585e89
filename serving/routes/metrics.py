"""`GET /metrics`: the gateway's Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.metrics import CONTENT_TYPE
from serving.state import GatewayStateDep

router = APIRouter()


@router.get("/metrics")
async def metrics(state: GatewayStateDep) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
