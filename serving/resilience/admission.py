"""Admission control as a pure ASGI middleware: too many `/v1/*` requests in flight (503 with Retry-After),
a body over the size limit (413, by Content-Length or counted as a chunked body arrives), headers over theirs
(431), a body slower than `body_read_seconds` (408, connection closed); a client that leaves before its answer
ends quietly. Each `/v1/*` request carries a `KeyHold` that intake fills once its key is known
(`max_in_flight_per_key`), released with the response. It never reads a body itself.

Pure ASGI, not `BaseHTTPMiddleware`: that one buffers and re-wraps every response, slowing and breaking streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api_error import ApiError
from serving.exceptions import (
    GatewayOverloadedError,
    HeadersTooLargeError,
    RequestTimeoutError,
    RequestTooLargeError,
)
from serving.resilience.key_in_flight import HOLD, KeyHold, KeyInFlight
from serving.resilience.settings import LimitSettings

GUARDED_PREFIX: Final = "/v1/"
"""Only API calls count toward `max_in_flight`: health checks and scrapes must answer under load."""

OnReject = Callable[[Scope, ApiError], None]


@dataclass
class InFlight:
    """What admission counts now: `/v1/*` requests being served, and per key; `/metrics` reads it at scrapes."""

    limits: LimitSettings
    requests: int = 0
    per_key: KeyInFlight = field(init=False)

    def __post_init__(self) -> None:
        self.per_key = KeyInFlight(self.limits.max_in_flight_per_key, self.limits.retry_after_seconds)

    def snapshot(self) -> dict[str, int]:
        """requests: all in flight; keys: keys with a request in flight; busiest_key: the largest one key holds."""
        counts = self.per_key.counts
        return {"requests": self.requests, "keys": len(counts), "busiest_key": max(counts.values(), default=0)}


class AdmissionMiddleware:
    """Refuses what `limits` forbid before the endpoint runs; one instance per app holds the in-flight count."""

    def __init__(
        self, app: ASGIApp, limits: LimitSettings, on_reject: OnReject | None = None, counts: InFlight | None = None
    ) -> None:
        self.app = app
        self.limits = limits
        self.counts = InFlight(limits) if counts is None else counts
        self._on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guarded = str(scope["path"]).startswith(GUARDED_PREFIX)
        refusal = self._refusal(scope, guarded)
        if refusal is not None:
            await self._reject(scope, send, refusal)
            return
        self.counts.requests += guarded
        hold = KeyHold(self.counts.per_key)
        if guarded:
            scope.setdefault("state", {})[HOLD] = hold
        try:
            await self._admitted(scope, receive, send)
        finally:
            self.counts.requests -= guarded
            hold.release()

    def _refusal(self, scope: Scope, guarded: bool) -> ApiError | None:
        limits = self.limits
        if guarded and self.counts.requests >= limits.max_in_flight:
            return GatewayOverloadedError(limits.max_in_flight, limits.retry_after_seconds)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        size = sum(len(name) + len(value) for name, value in headers)
        if size > limits.max_header_bytes:
            return HeadersTooLargeError(size, limits.max_header_bytes)
        length = _content_length(headers)
        if length is not None and length > limits.max_body_bytes:
            return RequestTooLargeError(limits.max_body_bytes)
        return None

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.max_body_bytes
        received = 0
        started = False
        timed = _BodyDeadline(self.limits.body_read_seconds)

        async def counting() -> Message:
            nonlocal received
            try:
                message = await timed.receive(receive)
            except RequestTimeoutError as late:
                self._count(scope, late)
                raise
            received += len(message.get("body", b""))
            if received > limit:
                error = RequestTooLargeError(limit)
                self._count(scope, error)
                raise error
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except (RequestTooLargeError, RequestTimeoutError) as error:
            # Raised in `counting` where no endpoint catches it (an endpoint reading the body answers it itself).
            if started:
                raise
            await _answer(send, error)
        except ClientDisconnect:
            return  # the client left while its body was read: nobody to answer, nothing to log

    async def _reject(self, scope: Scope, send: Send, error: ApiError) -> None:
        self._count(scope, error)
        await _answer(send, error)

    def _count(self, scope: Scope, error: ApiError) -> None:
        if self._on_reject is not None:
            self._on_reject(scope, error)


class _BodyDeadline:
    """`body_read_seconds` from the request's start to its body's last byte; receives after it (waiting for the
    client to leave, while an answer is made) have no deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = asyncio.get_running_loop().time() + seconds
        self.done = False

    async def receive(self, receive: Receive) -> Message:
        if self.done:
            return await receive()
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(receive(), max(remaining, 0.0))
        except TimeoutError:
            raise RequestTimeoutError("body", self.seconds, "body_read_seconds") from None
        self.done = message["type"] != "http.request" or not message.get("more_body", False)
        return message


async def _answer(send: Send, error: ApiError) -> None:
    """The OpenAI-shaped error, sent as raw ASGI messages (no endpoint or exception handler runs here)."""
    headers = [(b"content-type", b"application/json")]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status_code(), "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(error.body())})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length before we see it
    return None
