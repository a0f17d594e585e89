"""`GET /openapi.json` for admin and operator keys only (`routeiq_settings.security.api_docs: operator`). The
public Swagger page is not served in that mode: a browser cannot send the bearer key its spec request needs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serving.auth import OperatorDep

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def api_description(request: Request, caller: OperatorDep) -> JSONResponse:
    return JSONResponse(request.app.openapi())
