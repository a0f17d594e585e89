"""The gateway's key check: the master key (`general_settings.master_key`, role admin) or a virtual key from
the key store, as FastAPI dependencies. `/v1/*` takes any valid key; admin routes also need a role. With no
master key and no virtual keys `/v1/*` stays open but admin routes deny. Health and metrics stay open.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from serving.access.audit import DENIED, AuditEntry
from serving.access.guard import ANONYMOUS, Principal
from serving.access.keys import Role
from serving.access.quotas import Ticket
from serving.exceptions import AuthenticationError
from serving.state import GatewayStateDep

BEARER = "bearer "
PRINCIPAL = "principal"
"""Where `require_key` leaves the caller's `Principal` on `request.state`, for per-route checks."""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[: len(BEARER)].lower() != BEARER:
        return None
    return header[len(BEARER) :].strip() or None


async def require_key(request: Request, state: GatewayStateDep) -> str:
    """The caller's identity for A/B assignment: a hash of its key ("" when the gateway is open and no key
    was sent). Leaves the `Principal` on `request.state`. Async so FastAPI does not hand it to a thread."""
    token = bearer_token(request)
    principal = await state.access.principal(token)
    setattr(request.state, PRINCIPAL, principal)
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
        return principal

    return check


async def allow_model(request: Request, state: GatewayStateDep, model: str) -> None:
    """403 when the caller's key does not allow `model` (audited as a policy denial)."""
    await state.access.require_model(principal_of(request), model)


async def admit_quota(request: Request, state: GatewayStateDep) -> Ticket:
    """429 when the caller's key or team is over its rpm/tpm/budget, 503 when the quota store is down; the
    ticket charges the call's tokens and cost afterwards. The master key and anonymous callers pass freely."""
    return await state.access.quotas.admit(principal_of(request).key, time.time())


CallerDep = Annotated[str, Depends(require_key)]
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]
"""Key management: admin only."""
OperatorDep = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.OPERATOR))]
"""Router and registry admin routes: admin or operator."""
