"""OpenAI response bodies for a recorded answer: the `chat.completion` object and the SSE chunk stream.

Shapes, encoding and pacing only; it never looks up records or draws faults.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from serving.replay.latency import Delay
from serving.replay.outcomes import Record

PROMPT_ID_HEADER = "x-replay-prompt-id"
STREAM_PIECES = 8
"""A streamed answer's content is cut into at most this many chunks of near-equal length."""
SSE_MEDIA_TYPE = "text/event-stream"
SSE_DONE = b"data: [DONE]\n\n"
FINISH_REASON = "stop"


@dataclass(frozen=True, slots=True)
class Answer:
    """One response to one request: a fresh id, its creation time, the requested model and the record."""

    id: str
    created: int
    model: str
    record: Record

    @classmethod
    def new(cls, model: str, record: Record) -> Answer:
        """An answer with id `chatcmpl-<uuid4 hex>`, created now."""
        return cls(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=model, record=record)

    def head(self, kind: str) -> dict[str, Any]:
        """The fields every completion object and chunk share."""
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}


def completion_body(answer: Answer) -> bytes:
    """The non-streamed `chat.completion` JSON."""
    message = {"role": "assistant", "content": answer.record.text, "refusal": None}
    choice = {"index": 0, "message": message, "finish_reason": FINISH_REASON, "logprobs": None}
    return orjson.dumps({**answer.head("chat.completion"), "choices": [choice], "usage": answer.record.usage()})


def split_text(text: str, pieces: int = STREAM_PIECES) -> list[str]:
    """`text` cut into at most `pieces` consecutive parts that join back to it exactly ([] for "")."""
    if not text:
        return []
    size = math.ceil(len(text) / pieces)
    return [text[start : start + size] for start in range(0, len(text), size)]


async def stream_events(answer: Answer, delay: Delay, include_usage: bool, broken: bool) -> AsyncIterator[bytes]:
    """SSE events: role chunk, content chunks, final `stop` chunk, optional usage chunk, `[DONE]`.

    A broken stream stops after the role chunk and the first half of the content chunks, and the
    response then ends cleanly: no final chunk, no usage, no `[DONE]`.
    """
    pieces = split_text(answer.record.text)
    pause = delay.decode / len(pieces) if pieces else 0.0
    if delay.first_token:
        await asyncio.sleep(delay.first_token)
    yield _chunk(answer, {"role": "assistant", "content": ""})
    for piece in pieces[: len(pieces) // 2] if broken else pieces:
        if pause:
            await asyncio.sleep(pause)
        yield _chunk(answer, {"content": piece})
    if broken:
        return
    yield _chunk(answer, {}, FINISH_REASON)
    if include_usage:
        yield _sse({**answer.head("chat.completion.chunk"), "choices": [], "usage": answer.record.usage()})
    yield SSE_DONE


def _chunk(answer: Answer, delta: dict[str, str], finish_reason: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
    return _sse({**answer.head("chat.completion.chunk"), "choices": [choice]})


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"
