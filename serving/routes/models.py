"""`GET /v1/models`: the virtual routing model and the deployment names the caller may use (its key's
`allowed_models` and the policy); a restricted key never learns the names it cannot call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from serving.auth import CallerDep, permitted_models
from serving.openapi_spec import ModelList, responses
from serving.state import GatewayStateDep

OWNER = "routeiq"

router = APIRouter()


@router.get("/v1/models", response_model=None, responses=responses(ModelList, 401, 403, 503))
async def list_models(request: Request, state: GatewayStateDep, caller: CallerDep) -> dict[str, Any]:
    created = int(state.started_at)
    routing = state.config.settings.routing
    virtual = {
        "id": routing.virtual_model,
        "object": "model",
        "created": created,
        "owned_by": OWNER,
    }
    deployments = [
        {"id": name, "object": "model", "created": created, "owned_by": state.providers.deployment(name).provider}
        for name in permitted_models(request, state, state.providers.names)
    ]
    shown = [virtual] if permitted_models(request, state, (routing.virtual_model,)) and deployments else []
    return {"object": "list", "data": [*shown, *deployments]}
