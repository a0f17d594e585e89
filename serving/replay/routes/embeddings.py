"""`POST /v1/embeddings`: a deterministic unit vector per input, from the SHA-256 of the input.

Not a model of meaning: it exists so embeddings passthrough can be tested end to end; it reads no records.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct

import orjson
from fastapi import APIRouter, Request, Response

from features.prompt import estimate_tokens
from serving.replay.faults import draw_faults
from serving.replay.schemas import parse_embeddings_request
from serving.replay.state import ReplayStateDep

DIMENSIONS = 16
_HALF_RANGE = 32767.5
"""Half the range of an unsigned 16-bit integer: maps 0..65535 onto -1..1."""

router = APIRouter()


@router.post("/v1/embeddings")
async def create_embeddings(request: Request, state: ReplayStateDep) -> Response:
    """One vector per input item; 404 for a model not in the outcomes file, injected faults as for chat."""
    body = parse_embeddings_request(await request.body())
    state.index.require_model(body.model)
    draw_faults(state.settings, state.rng, stream=False)
    items = body.items
    data = [
        {"object": "embedding", "index": index, "embedding": encode(vector(item), body.encoding_format)}
        for index, item in enumerate(items)
    ]
    tokens = sum(len(item) if isinstance(item, list) else estimate_tokens(item) for item in items)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    payload = {"object": "list", "data": data, "model": body.model, "usage": usage}
    return Response(orjson.dumps(payload), media_type="application/json")


def vector(item: str | list[int]) -> list[float]:
    """A unit vector of `DIMENSIONS` floats from the SHA-256 of the text (or of the token array's JSON)."""
    raw = item.encode("utf-8") if isinstance(item, str) else orjson.dumps(item)
    digest = hashlib.sha256(raw).digest()
    values = [value / _HALF_RANGE - 1.0 for value in struct.unpack(f">{DIMENSIONS}H", digest)]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]


def encode(values: list[float], encoding_format: str) -> list[float] | str:
    """Floats as a JSON list, or base64 of little-endian float32 as OpenAI sends for `base64`."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    return values
