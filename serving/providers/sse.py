"""Server-sent events as OpenAI streams them: cutting a byte stream into events, reading and writing `data:`.

Framing only; it never decides what to forward or counts anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import orjson

DONE: Final = "[DONE]"
"""The payload of OpenAI's last event."""
DONE_EVENT: Final = b"data: [DONE]\n\n"
_SEPARATORS: Final = (b"\r\n\r\n", b"\n\n", b"\r\r")

Payload = dict[str, Any] | str | None
"""A parsed event: a JSON object, `DONE`, or None (a comment, a keep-alive, or data that is not an object)."""


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Whole events, each with its blank-line terminator, from bytes cut anywhere; a trailing partial
    event is yielded as it is when the stream ends."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while True:
            end, size = _boundary(buffer)
            if end < 0:
                break
            yield buffer[: end + size]
            buffer = buffer[end + size :]
    if buffer.strip():
        yield buffer


def _boundary(buffer: bytes) -> tuple[int, int]:
    found = [(index, len(sep)) for sep in _SEPARATORS if (index := buffer.find(sep)) >= 0]
    return min(found) if found else (-1, 0)


def parse(event: bytes) -> Payload:
    """The event's `data` (its lines joined) as a JSON object, `DONE`, or None."""
    lines = [line[5:].removeprefix(b" ") for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    data = b"\n".join(lines)
    if data.strip() == b"[DONE]":
        return DONE
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def encode(payload: Mapping[str, Any]) -> bytes:
    """One `data: {json}` event."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def usage_only(payload: Mapping[str, Any]) -> bool:
    """The chunk `stream_options.include_usage` adds: usage and no choices."""
    return payload.get("choices") == [] and payload.get("usage") is not None
