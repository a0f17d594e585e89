"""`GET /metrics`: the gateway's Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from serving.metrics import CONTENT_TYPE
from serving.openapi_spec import responses
from serving.state import GatewayStateDep

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse, responses=responses(None))
async def metrics(state: GatewayStateDep) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
