"""An upstream's HTTP failure as the gateway error a client gets, on both call paths.

Messages name the deployment (never its URL or key) and carry the upstream's own message, scrubbed of secrets.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

import orjson

from serving.exceptions import (
    GatewayError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from serving.security.scrub import scrub

MAX_MESSAGE_CHARS: Final = 500
CREDENTIAL_STATUSES: Final = frozenset({HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN})


def status_error(where: str, status: int, message: str, retry_after: str | None = None) -> GatewayError:
    """The gateway error for an upstream answering `status` with `message`.

    429 keeps Retry-After; 408 is a timeout; 401/403 mean the gateway's credentials for the deployment are
    wrong, which no client can fix, so they are a 502; other 4xx pass on with their status; the rest are 502.
    """
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return UpstreamRateLimitError(f"{where} is rate-limited by its provider: {message}", retry_after)
    if status == HTTPStatus.REQUEST_TIMEOUT:
        return UpstreamTimeoutError(f"{where} timed out at its provider: {message}")
    if status in CREDENTIAL_STATUSES:
        return UpstreamError(
            f"{where} refused the gateway's credentials (HTTP {status}): {message}; "
            "the operator must fix its `api_key` in the gateway config"
        )
    if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
        return UpstreamStatusError(status, f"{where} rejected the request (HTTP {status}): {message}")
    return UpstreamError(f"{where} failed (HTTP {status}): {message}")


def body_message(body: bytes, status: int) -> str:
    """The message in an error body: OpenAI's `error.message`, a `message` or `detail`, else the text.

    Scrubbed before it is clipped: an upstream echoing the request's key must not leave half of it at the cut.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        candidates = (
            error.get("message") if isinstance(error, dict) else error,
            data.get("message"),
            data.get("detail"),
        )
        for candidate in candidates:
            if isinstance(candidate, str) and candidate:
                return _clip(candidate)
    text = body.decode("utf-8", errors="replace").strip()
    return _clip(text) if text else _reason(status)


def _clip(text: str) -> str:
    # A bounded head is scrubbed, not a multi-megabyte HTML page: what lies beyond it is clipped anyway.
    text = scrub(text[: MAX_MESSAGE_CHARS * 4])
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no message"
