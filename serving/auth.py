"""The gateway's key check: the master key (`general_settings.master_key`, role admin) or a virtual key from
the key store, as FastAPI dependencies (the model routes call the same checks from `serving.intake`). `/v1/*`
takes any valid key; admin routes also need a role. With no master key and no virtual keys `/v1/*` stays open but
admin routes deny. Health and metrics stay open. The same checks enforce `routeiq_settings.policy`, once per
request (model routes: once the model is known).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from serving.access.audit import DENIED, AuditEntry
from serving.access.guard import ANONYMOUS, Principal
from serving.access.keys import Role
from serving.exceptions import AuthenticationError, PermissionDeniedError
from serving.policy.client_ip import FORWARDED_FOR, client_address
from serving.policy.engine import PolicyDecision, RequestContext, evaluate
from serving.policy.rules import ALLOW, PolicySettings
from serving.state import GatewayState, GatewayStateDep
from serving.telemetry import attributes as a

BEARER = "bearer "
PRINCIPAL = "principal"
"""Where `require_key` leaves the caller's `Principal` on `request.state`, for per-route checks."""
POLICY = "policy_decision"
"""Where the policy's `(model, PolicyDecision)` is kept on `request.state`, so it is evaluated once."""
POLICY_ACTION = "policy.rule"
"""Audit action of a request a policy rule (or the policy's default) denied."""


def bearer_token(request: Request) -> str | None:
    """The `Authorization: Bearer` key. Two Authorization headers are a 401, never a pick: a proxy in front
    may check one while the gateway reads the other. Other key headers (`x-api-key`, `api-key`) are never
    read as credentials."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise AuthenticationError(
            f"The request has {len(values)} Authorization headers; send exactly one, `Authorization: Bearer <key>`."
        )
    header = values[0] if values else ""
    if header[: len(BEARER)].lower() != BEARER:
        return None
    return header[len(BEARER) :].strip() or None


async def require_key(request: Request, state: GatewayStateDep) -> str:
    """The caller's identity for A/B assignment: a hash of its key ("" when the gateway is open and no key
    was sent). Leaves the `Principal` on `request.state`. Async so FastAPI does not hand it to a thread."""
    token = bearer_token(request)
    principal = await state.access.principal(token)
    setattr(request.state, PRINCIPAL, principal)
    await enforce_policy(request, state, None)
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""


def principal_of(request: Request) -> Principal:
    """The caller `require_key` found (anonymous if the route has no key dependency)."""
    found: Principal = getattr(request.state, PRINCIPAL, Principal(ANONYMOUS, None))
    return found


def require_role(*roles: Role) -> Callable[[Request, GatewayStateDep], Awaitable[Principal]]:
    """A dependency admitting only `roles`; every call, allowed or denied, is audited."""

    async def check(request: Request, state: GatewayStateDep) -> Principal:
        action = f"{request.method} {request.url.path}"
        try:
            principal = await state.access.principal(bearer_token(request))
        except AuthenticationError as exc:
            await state.access.audit(AuditEntry(ANONYMOUS, action, action, DENIED, {"reason": exc.message}))
            raise
        await state.access.require_role(principal, roles, action)
        setattr(request.state, PRINCIPAL, principal)
        await enforce_policy(request, state, None)
        return principal

    return check


async def allow_model(request: Request, state: GatewayStateDep, model: str) -> None:
    """403 when the caller's key does not allow `model`, or the policy denies this request for `model`
    (both audited as policy denials)."""
    await state.access.require_model(principal_of(request), model)
    await enforce_policy(request, state, model)


async def enforce_policy(request: Request, state: GatewayState, model: str | None) -> PolicyDecision:
    """Evaluate `routeiq_settings.policy` for this request once: a later call returns the first decision,
    unless it brings a model the first did not see. A denial is audited with the rule and trace, then raised (403)."""
    found: tuple[str | None, PolicyDecision] | None = getattr(request.state, POLICY, None)
    if found is not None and (model is None or found[0] == model):
        return found[1]
    policy = state.config.settings.policy
    principal = principal_of(request)
    if not policy.rules and policy.default == ALLOW:
        decision = PolicyDecision(ALLOW, None, ())
    else:
        decision = evaluate(policy, policy_context(request, principal, model, policy))
    setattr(request.state, POLICY, (model, decision))
    if decision.allowed:
        return decision
    target = f"{request.method} {request.url.path}"
    details = {"rule": decision.rule, "model": model, "trace": list(decision.trace), "error": decision.error}
    await state.access.audit(AuditEntry(principal.actor, POLICY_ACTION, target, DENIED, details))
    raise PermissionDeniedError(denial_message(decision))


def permitted_models(request: Request, state: GatewayState, names: tuple[str, ...]) -> tuple[str, ...]:
    """The `names` the caller may use: its key's `allowed_models`, and no policy rule denying it for that model
    (evaluated quietly: narrowing a routed choice is not a denial). Routing and failover choose among these."""
    principal = principal_of(request)
    key = principal.key
    allowed = names if key is None or not key.allowed_models else tuple(n for n in names if key.allows(n))
    policy = state.config.settings.policy
    if not policy.rules and policy.default == ALLOW:
        return allowed
    return tuple(n for n in allowed if evaluate(policy, policy_context(request, principal, n, policy)).allowed)


def policy_attributes(request: Request) -> dict[str, str]:
    """Span attributes of the policy's decision on this request: the rule that allowed it, if one did."""
    found: tuple[str | None, PolicyDecision] | None = getattr(request.state, POLICY, None)
    if found is None or found[1].rule is None:
        return {}
    return {a.POLICY_RULE: found[1].rule}


def policy_context(request: Request, principal: Principal, model: str | None, policy: PolicySettings) -> RequestContext:
    """What the rules see of this request; the client address is the socket peer unless it is a trusted proxy."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    peer = request.client.host if request.client is not None else None
    key = principal.key
    return RequestContext(
        actor=principal.actor,
        team=key.team if key is not None else None,
        role=principal.role.value if principal.role is not None else None,
        model=model,
        route=request.url.path,
        method=request.method,
        headers=headers,
        client_ip=client_address(peer, headers.get(FORWARDED_FOR), policy.trusted_proxies),
        now=datetime.now(UTC),
    )


def denial_message(decision: PolicyDecision) -> str:
    """What the client is told: the deciding rule only (never the others), and its `message` when set."""
    if decision.rule is None:
        return (
            "No rule of the gateway's policy allows this request and its default is deny; ask the gateway's "
            "operator for a rule that allows it (routeiq_settings.policy)."
        )
    if decision.error is not None:
        return (
            f"Policy rule {decision.rule!r} could not be evaluated for this request ({decision.error}), and "
            "routeiq_settings.policy.fail_closed is on, so it is refused; fix the request or ask the operator."
        )
    told = decision.message or "ask the gateway's operator if it should be allowed (routeiq_settings.policy)"
    return f"Policy rule {decision.rule!r} denies this request: {told}"


CallerDep = Annotated[str, Depends(require_key)]
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]
"""Key management: admin only."""
OperatorDep = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.OPERATOR))]
"""Router and registry admin routes: admin or operator."""
