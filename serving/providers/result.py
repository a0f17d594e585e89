"""What a provider call hands the gateway: a finished `ProviderResult`, or a `ProviderStream` of SSE bytes
whose `summary` is set once it ends. Shapes and the forwarding loop; no HTTP, no pricing rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from serving.exceptions import UpstreamError
from serving.providers import sse
from serving.providers.pricing import Cost

CallPath = Literal["direct", "litellm"]
DIRECT: CallPath = "direct"
LITELLM: CallPath = "litellm"


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """A finished call: the bytes for the client and what the gateway records about them."""

    body: bytes
    response_id: str
    """The upstream's response id ("" when it gave none, as for embeddings)."""
    response_model: str
    """The model the upstream says answered (the deployment's upstream model when it did not say)."""
    input_tokens: int
    output_tokens: int
    finish_reasons: tuple[str, ...]
    cost: Cost
    provider: str
    path: CallPath


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """A stream's usage, known once it ended. Tokens are the upstream's when it sent usage, else estimated
    (ceil(chars / 4)) and `usage_estimated` is True; `complete` is False when the stream broke off."""

    response_id: str
    response_model: str
    input_tokens: int
    output_tokens: int
    finish_reasons: tuple[str, ...]
    cost: Cost
    provider: str
    path: CallPath
    complete: bool
    usage_estimated: bool


class StreamTally:
    """What the chunks seen so far say: id, model, finish reasons, content length, usage."""

    __slots__ = ("content_chars", "finish_reasons", "response_id", "response_model", "usage")

    def __init__(self) -> None:
        self.response_id = ""
        self.response_model = ""
        self.finish_reasons: list[str] = []
        self.content_chars = 0
        self.usage: dict[str, object] | None = None

    def observe(self, chunk: dict[str, object]) -> None:
        """Account one `chat.completion.chunk`."""
        if not self.response_id and isinstance(chunk.get("id"), str):
            self.response_id = str(chunk["id"])
        if isinstance(chunk.get("model"), str):
            self.response_model = str(chunk["model"])
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                self.content_chars += len(content)
            if choice.get("finish_reason"):
                self.finish_reasons.append(str(choice["finish_reason"]))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage

    @property
    def complete(self) -> bool:
        """The upstream finished the answer (a `finish_reason` arrived)."""
        return bool(self.finish_reasons)


Events = AsyncGenerator[tuple[bytes, sse.Payload], None]
"""A path's stream: each event's bytes to forward, with its parsed payload."""


class ProviderStream:
    """An async iterator of SSE bytes to forward as they arrive. When it ends (normally, on an error, or on
    `aclose()` after the client left) `summary` is set. An upstream failure mid-stream, or a stream that ends
    before any `finish_reason`, is raised as a `GatewayError` after that: the client must not take a cut-off
    answer for a whole one. The usage-only chunk is dropped unless the client asked for it."""

    def __init__(
        self, events: Events, summarise: Callable[[StreamTally], StreamSummary], include_usage: bool, where: str
    ) -> None:
        self.summary: StreamSummary | None = None
        self._where = where
        self._events = events
        self._summarise = summarise
        self._include_usage = include_usage
        self._tally = StreamTally()
        self._forward = self._run()
        self._first: bytes | None = None

    async def start(self) -> None:
        """Wait for the first chunk to forward. A stream that breaks or ends before it raises here, while the
        caller can still answer with an error status or try another deployment; after it, failures can only
        end the stream with an error event."""
        if self._first is None:
            with contextlib.suppress(StopAsyncIteration):  # an empty stream that ended well: nothing held back
                self._first = await self._forward.__anext__()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        first, self._first = self._first, None
        return first if first is not None else await self._forward.__anext__()

    async def aclose(self) -> None:
        """Stop early: close the upstream response and set `summary` (with `complete=False`)."""
        await self._forward.aclose()
        if self.summary is None:
            # Never started: the generator's `finally` did not run, but the upstream is open.
            await self._events.aclose()
            self.summary = self._summarise(self._tally)

    async def _run(self) -> AsyncGenerator[bytes, None]:
        try:
            async for raw, payload in self._events:
                if isinstance(payload, dict):
                    self._tally.observe(payload)
                    if not self._include_usage and sse.usage_only(payload):
                        continue
                yield raw
        finally:
            self.summary = self._summarise(self._tally)
            await self._events.aclose()
        if not self._tally.finish_reasons:
            raise UpstreamError(f"{self._where} ended the stream before the answer finished (no finish_reason)")
