"""`GET /v1/models`: the virtual routing model and every configured deployment name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.auth import CallerDep
from serving.openapi_spec import ModelList, responses
from serving.state import GatewayStateDep

OWNER = "routeiq"

router = APIRouter()


@router.get("/v1/models", response_model=None, responses=responses(ModelList, 401, 403, 503))
async def list_models(state: GatewayStateDep, caller: CallerDep) -> dict[str, Any]:
    created = int(state.started_at)
    virtual = {
        "id": state.config.settings.routing.virtual_model,
        "object": "model",
        "created": created,
        "owned_by": OWNER,
    }
    deployments = [
        {"id": name, "object": "model", "created": created, "owned_by": state.providers.deployment(name).provider}
        for name in state.providers.names
    ]
    return {"object": "list", "data": [virtual, *deployments]}
