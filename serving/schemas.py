"""Request bodies the gateway accepts: the chat, embeddings and feedback schemas, strict on the fields the
gateway reads; which other fields may pass to a provider is `serving.request_fields`' allow-list. Parsing only.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from serving.exceptions import InvalidRequestError
from serving.openai_schema import STRICT, Message, StreamOptions, describe_errors

MAX_NAME_CHARS = 256
"""Longest model name a request may send: names are looked up, recorded on spans and quoted in errors."""
COST_WEIGHT_HEADER = "x-routeiq-cost-weight"
SCHEMA = "OpenAI chat schema"
MAX_OUTPUT_TOKENS = 1_000_000
"""Above any model's output limit: a larger `max_tokens` is a client bug, refused before an upstream sees it."""
MAX_CHOICES = 128
"""OpenAI's own bound on `n`."""
MAX_DEPTH = 254
"""Deepest nesting of a body, the top object included: `orjson.dumps` refuses deeper (it parses up to 1024)."""

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
"""OpenAI's bounds on `metadata` (shared/specs/openai/openapi.yaml, `Metadata`): string values only."""

M = TypeVar("M", bound=BaseModel)

MetadataMap = dict[
    Annotated[str, Field(max_length=MAX_METADATA_KEY_CHARS)], Annotated[str, Field(max_length=MAX_METADATA_VALUE_CHARS)]
]

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A JSON string literal; what is left between them holds one `:` per object member."""
_DEPTH_EXCEEDED = "depth limit exceeded"
"""How orjson says a body nests deeper than it parses (1024 levels)."""
_ESCAPED_COLON = b"\\u003"
"""Starts `\\u003a`/`\\u003A`, the only escapes that decode to `:` (the digits `\\u0030`.. take the slow path too)."""


class RouteIQExtension(BaseModel):
    """RouteIQ's per-request options."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    cost_weight: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)


class ChatRequest(BaseModel):
    """The fields of a chat-completions body the gateway itself reads."""

    model_config = STRICT

    model: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    n: int | None = Field(default=None, ge=1, le=MAX_CHOICES)
    user: str | None = None
    metadata: MetadataMap | None = Field(default=None, max_length=MAX_METADATA_PAIRS)
    routeiq: RouteIQExtension | None = None


class EmbeddingsRequest(BaseModel):
    """The fields of an embeddings body the gateway reads."""

    model_config = STRICT

    model: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    input: str | list[str] | list[int] | list[list[int]]


class FeedbackRequest(BaseModel):
    """`POST /v1/feedback`: a score in [0, 1] for a response id the gateway returned."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=256)
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    source: str = Field(default="client", min_length=1, max_length=128)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`: valid JSON, an object, re-encodable, no key repeated."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _DEPTH_EXCEEDED in str(exc):
            raise _too_deep() from exc
        raise InvalidRequestError(f"The request body is not valid JSON ({exc}); send a JSON object.") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    try:
        again = orjson.dumps(body)
    except orjson.JSONEncodeError as exc:  # the one way a parsed body fails: nested past orjson's limit
        raise _too_deep() from exc
    if _repeats_a_key(raw, again):
        raise InvalidRequestError(
            f"The request body has the key {_repeated_key(raw)} twice in one object; send each key once "
            "(JSON parsers disagree on which copy wins, so the gateway refuses rather than guess)."
        )
    return body


def _too_deep() -> InvalidRequestError:
    return InvalidRequestError(
        f"The request body nests arrays and objects more than {MAX_DEPTH} levels deep; flatten it "
        "(the gateway re-encodes every body it forwards, and JSON nested deeper cannot be re-encoded)."
    )


def _repeats_a_key(raw: bytes, again: bytes) -> bool:
    """Whether an object in `raw` has a key twice, given `again`, the parsed body re-encoded by orjson (which
    kept only the last copy of a repeated key).

    Every `:` outside a string separates a key from its value, and strings come back from `orjson.dumps`
    with the same colons unless `raw` escaped one (`\\u003a`). So without such an escape, `raw` has more
    colons than `again` exactly when copies were dropped. With one, the strings are cut out first (slower,
    and rare)."""
    if _ESCAPED_COLON not in raw:
        return raw.count(b":") != again.count(b":")
    return _member_count(raw) != _member_count(again)


def _member_count(text: bytes) -> int:
    """Object members in valid JSON `text`: the `:`s left once the strings are cut out."""
    return _JSON_STRING.sub(b"", text).count(b":")


def _repeated_key(raw: bytes) -> str:
    """The first repeated key, quoted, for the error message; parsed again only once a repeat was found."""
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        return dict(items)

    # orjson read it; the stdlib may not (nested deeper than its recursion limit): then no key is named.
    with contextlib.suppress(ValueError, RecursionError):
        json.loads(raw, object_pairs_hook=pairs)
    return repr(repeated[0]) if repeated else "(one of them)"


def validate(model: type[M], body: dict[str, Any], schema: str = SCHEMA) -> M:
    """`body` checked against `model`, or a 400 naming the first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_request(exc.errors(include_url=False), schema) from exc


def invalid_request(errors: list[ErrorDetails], schema: str = SCHEMA) -> InvalidRequestError:
    """The 400 error for pydantic errors: the first one names the parameter, the rest are counted."""
    message, param = describe_errors(errors, schema)
    return InvalidRequestError(message, param=param)


def header_cost_weight(value: str | None) -> float | None:
    """λ from the `x-routeiq-cost-weight` header, or None when absent."""
    if value is None:
        return None
    try:
        weight = float(value)
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight) or weight < 0:
        raise InvalidRequestError(
            f"{COST_WEIGHT_HEADER} must be a finite number ≥ 0 (got {value!r}); e.g. 0 for best quality",
            param=COST_WEIGHT_HEADER,
        )
    return weight
