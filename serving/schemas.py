"""Request bodies the gateway accepts: the chat, embeddings and feedback schemas, strict on the fields the
gateway reads, everything else passed through to the provider untouched. Parsing only.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from serving.exceptions import ForbiddenParameterError, InvalidRequestError
from serving.openai_schema import STRICT, Message, StreamOptions, describe_errors

FORBIDDEN_FIELDS = ("api_base", "base_url", "api_key", "extra_headers", "api_version", "organization")
"""Fields that would let a client pick the upstream or its credentials."""
EXTENSION_FIELD = "routeiq"
"""Body extension `{"routeiq": {"cost_weight": λ}}`; removed before the body goes upstream."""
COST_WEIGHT_HEADER = "x-routeiq-cost-weight"
SCHEMA = "OpenAI chat schema"

M = TypeVar("M", bound=BaseModel)


class RouteIQExtension(BaseModel):
    """RouteIQ's per-request options."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    cost_weight: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)


class ChatRequest(BaseModel):
    """The fields of a chat-completions body the gateway itself reads."""

    model_config = STRICT

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    routeiq: RouteIQExtension | None = None


class EmbeddingsRequest(BaseModel):
    """The fields of an embeddings body the gateway reads."""

    model_config = STRICT

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]


class FeedbackRequest(BaseModel):
    """`POST /v1/feedback`: a score in [0, 1] for a response id the gateway returned."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=256)
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    source: str = Field(default="client", min_length=1, max_length=128)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, with upstream-choosing fields refused."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON ({exc}); send a JSON object.") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    for field in FORBIDDEN_FIELDS:
        if field in body:
            raise ForbiddenParameterError(field)
    return body


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
