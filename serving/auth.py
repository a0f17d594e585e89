"""The gateway's key check: with `general_settings.master_key` set, every API and admin route needs
`Authorization: Bearer <key>`, compared in constant time. Health and metrics stay open.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from serving.exceptions import AuthenticationError
from serving.state import GatewayStateDep

BEARER = "bearer "


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[: len(BEARER)].lower() != BEARER:
        return None
    return header[len(BEARER) :].strip() or None


async def require_key(request: Request, state: GatewayStateDep) -> str:
    """The caller's identity for A/B assignment: a hash of its key ("" when the gateway has no key). Async so
    FastAPI does not hand it to a worker thread."""
    expected = state.config.master_key
    token = bearer_token(request)
    if expected is None:
        return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationError()
    return hashlib.sha256(token.encode()).hexdigest()[:16]


CallerDep = Annotated[str, Depends(require_key)]
