"""`GET /admin/router`: what routes the virtual model now — version, family, watched reference, A/B split,
last poll result — or that the fallback serves and why. Role admin or operator; every call is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.auth import OperatorDep
from serving.openapi_spec import RouterStatus, responses
from serving.routes.health import fallback_reason
from serving.state import GatewayStateDep

router = APIRouter()


@router.get("/admin/router", response_model=None, responses=responses(RouterStatus, 401, 403, 503))
async def router_status(state: GatewayStateDep, caller: OperatorDep) -> dict[str, Any]:
    config = state.config
    routing = config.settings.routing
    policy = state.policy
    champion = policy.champion
    challenger = policy.challenger
    fallback = routing.fallback_model or f"uniform draw among {len(state.providers.names)} deployments"
    return {
        "virtual_model": routing.virtual_model,
        "strategy": "learned" if config.learned else config.routing_strategy,
        "family": routing.family,
        "mode": "router" if champion.active is not None else "fallback",
        "fallback": fallback,
        "fallback_reason": fallback_reason(state),
        "hot_reload": routing.hot_reload,
        "poll_interval_seconds": routing.poll_interval_seconds,
        "epsilon": routing.epsilon,
        "cost_weight": {"default": routing.cost_weight, "min": routing.min_cost_weight, "max": routing.max_cost_weight},
        "budget_ms": routing.budget_ms,
        "champion": champion.describe(),
        "challenger": challenger.describe() if challenger is not None else None,
        "challenger_fraction": routing.challenger_fraction if challenger is not None else 0.0,
        "deployments": list(state.providers.names),
    }
