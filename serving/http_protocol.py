"""The gateway's HTTP/1.1 protocol: uvicorn's httptools protocol, with the header block as a request's only
headers (trailers of a chunked body are counted against `limits.max_header_bytes`, then dropped: never read as
credentials or routing controls), a deadline on the request's head, and OpenAI-shaped JSON instead of uvicorn's
plain-text 400 for bytes that are not HTTP. It never reads or answers a request the app can answer itself.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from serving.api_error import ApiError
from serving.exceptions import HeadersTooLargeError, InvalidHttpRequestError, RequestTimeoutError
from serving.resilience.settings import LimitSettings

HEAD_SLACK_BYTES = 64 * 1024
"""Raw bytes a request's head may carry beyond `max_header_bytes` (request line, separators) before it is
refused unfinished; the admission middleware applies the exact limit once the head is complete."""


def error_bytes(error: ApiError) -> bytes:
    """`error` as a whole HTTP/1.1 response that closes the connection (for answers sent before any app runs)."""
    body = orjson.dumps(error.body())
    status = error.status_code()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "content-type: application/json"]
    head += [f"{name.lower()}: {value}" for name, value in error.headers().items() if name.lower() != "connection"]
    head += [f"content-length: {len(body)}", "connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def protocol_for(limits: LimitSettings) -> type[asyncio.Protocol]:
    """The protocol class uvicorn builds one of per connection (`uvicorn.Config(http=...)`), bound to `limits`."""
    return type("BoundGatewayProtocol", (GatewayProtocol,), {"limits": limits})


class GatewayProtocol(HttpToolsProtocol):
    """One connection. Parser callbacks run synchronously inside `data_received`, so flags set there are read
    after each feed: `_pending_chunk` is a chunk header no body has followed yet (so far, the last chunk)."""

    limits: ClassVar[LimitSettings] = LimitSettings()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._began = False
        self._head_done = False
        self._feed_counted = False
        self._head_bytes = 0
        self._trailer_bytes = 0
        self._pending_chunk = False
        self._body_seen = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head = not self._head_done
        in_trailer = self._head_done and self._pending_chunk
        self._body_seen = False
        self._feed_counted = in_trailer
        super().data_received(data)
        if self.transport.is_closing():
            return
        if in_head and not self._head_done:
            self._head_bytes += len(data)  # feeds that end the head are not counted: bounded by one read
        elif in_trailer and self._pending_chunk and not self._body_seen:
            self._trailer_bytes += len(data)
        limit = self.limits.max_header_bytes
        if self._head_bytes > limit + HEAD_SLACK_BYTES or self._trailer_bytes > limit:
            self.refuse(HeadersTooLargeError(max(self._head_bytes, self._trailer_bytes), limit))

    def send_400_response(self, msg: str) -> None:
        self.refuse(InvalidHttpRequestError())

    def refuse(self, error: ApiError) -> None:
        """Answer `error` (unless a response is under way: then only close) and close the connection; the app,
        if it runs, sees the client gone."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
            if not cycle.response_started:
                self.transport.write(error_bytes(error))
        elif not self.pipeline:
            self.transport.write(error_bytes(error))
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = True
        self._head_done = False
        self._head_bytes = self._trailer_bytes = 0
        self._pending_chunk = False
        self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a trailer: counted (unless its whole feed is), never a header
            self._trailer_bytes += 0 if self._feed_counted else len(name) + len(value)
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        self._pending_chunk = True

    def on_chunk_complete(self) -> None:
        self._pending_chunk = False

    def on_body(self, body: bytes) -> None:
        self._pending_chunk = False
        self._body_seen = True
        super().on_body(body)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_read_seconds, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._head_done or self.transport.is_closing():
            return
        if not self._began:  # not a byte of a request yet: an idle connection, closed without an answer
            self.transport.close()
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head waits for the answer before it; never cut that answer
            return
        self.refuse(RequestTimeoutError("line and headers", self.limits.header_read_seconds, "header_read_seconds"))
