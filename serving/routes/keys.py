"""`POST /admin/keys`, `GET /admin/keys`, `DELETE /admin/keys/{id}`: create (the secret is shown once), list
(never a secret or hash) and revoke virtual keys. Admin role only; each change is audited before it is made.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from serving.access.audit import ALLOWED, DENIED, FAILED, AuditEntry
from serving.access.guard import AccessControl, Principal
from serving.access.keys import KeyRequest, KeyStoreError, VirtualKey, mint
from serving.auth import AdminDep
from serving.exceptions import AccessUnavailableError, InvalidRequestError, KeyNotFoundError
from serving.exchange import read_body
from serving.openapi_spec import Key, KeyList, NewKey, json_body, responses
from serving.schemas import parse_body, validate
from serving.state import GatewayStateDep

T = TypeVar("T")

KEY_SCHEMA = "key schema {team, role, allowed_models, max_budget_usd, rpm, tpm, expires_at}"

router = APIRouter()


@router.post(
    "/admin/keys",
    response_model=None,
    responses=responses(NewKey, 400, 401, 403, 503),
    openapi_extra=json_body(KeyRequest, "Who the key is for and its limits; unknown fields are refused."),
)
async def create_key(request: Request, state: GatewayStateDep, caller: AdminDep) -> dict[str, Any]:
    """A new key; `key` in the answer is the only time the secret is ever shown."""
    spec = validate(KeyRequest, parse_body(await read_body(request)), KEY_SCHEMA)
    if spec.expires_at is not None and spec.expires_at <= time.time():
        raise InvalidRequestError("expires_at is in the past; give a future unix time or omit it.", "expires_at")
    new = mint(spec)
    access = state.access
    await access.audit(AuditEntry(caller.actor, "key.create", new.record.id, ALLOWED, _details(new.record)))
    await _stored(access, caller, "key.create", new.record.id, access.keys.add(new))
    access.key_added()
    return {**new.record.public(), "key": new.secret}


@router.get("/admin/keys", response_model=None, responses=responses(KeyList, 401, 403, 503))
async def list_keys(state: GatewayStateDep, caller: AdminDep) -> dict[str, Any]:
    keys = await _stored(state.access, caller, "key.list", "*", state.access.keys.list_keys())
    return {"object": "list", "data": [key.public() for key in keys]}


@router.delete("/admin/keys/{key_id}", response_model=None, responses=responses(Key, 401, 403, 404, 503))
async def revoke_key(key_id: str, state: GatewayStateDep, caller: AdminDep) -> dict[str, Any]:
    access = state.access
    known = await _stored(access, caller, "key.revoke", key_id, access.keys.list_keys())
    if not any(key.id == key_id for key in known):
        await access.audit(AuditEntry(caller.actor, "key.revoke", key_id, DENIED, {"reason": KeyNotFoundError.code}))
        raise KeyNotFoundError(key_id)
    await access.audit(AuditEntry(caller.actor, "key.revoke", key_id, ALLOWED))
    key = await _stored(access, caller, "key.revoke", key_id, access.keys.revoke(key_id, time.time()))
    if key is None:  # revoked by another replica meanwhile: the store no longer holds it as live
        raise KeyNotFoundError(key_id)
    return key.public()


async def _stored(access: AccessControl, caller: Principal, action: str, target: str, work: Awaitable[T]) -> T:
    """Await the store call `work`; a failing store is audited and answered 503."""
    try:
        result = await work
    except KeyStoreError as exc:
        await access.audit(AuditEntry(caller.actor, action, target, FAILED, {"error": str(exc)}))
        raise AccessUnavailableError(
            f"The key store failed during {action}; nothing was changed, retry later "
            "(operators: check routeiq_settings.access.key_store)."
        ) from exc
    return result


def _details(key: VirtualKey) -> dict[str, Any]:
    details = key.public()
    details.pop("id")
    details.pop("object")
    return details
