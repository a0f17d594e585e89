"""What the gateway's OpenAPI document declares per operation: the request bodies the routes parse themselves,
the success answers (JSON, or server-sent events for streamed chat) and every OpenAI-shaped error status.

Documentation only: the models here are never used to parse or answer a request. Route decorators call
`responses(...)` and `json_body(...)`; nothing else imports this module.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

OPEN = ConfigDict(extra="allow")
"""Answers passed on from an upstream may carry more fields than the gateway names."""
SSE_MEDIA_TYPE = "text/event-stream"
JSON_MEDIA_TYPE = "application/json"
UPSTREAM_4XX = "4XX"
"""Any other 4xx an upstream answered, passed on with its status (`upstream_rejected`)."""

ERROR_MEANINGS = MappingProxyType[int | str, str](
    {
        400: "invalid_request_error, unsupported_parameter or forbidden_parameter: the body is not a JSON object, "
        "repeats a key, breaks the schema, carries a field that is not a documented OpenAI request field, or sets a "
        "field only the gateway's config may set",
        401: "invalid_api_key: missing, wrong, expired or revoked key, or conflicting credentials",
        403: "permission_denied: the key's role or allowed_models, or a routeiq_settings.policy rule, refuse it",
        404: "model_not_found (neither a deployment nor the virtual model) or the upstream's own 404",
        408: "request_timeout: the headers or the body took longer than routeiq_settings.limits.header_read_seconds "
        "or body_read_seconds to arrive",
        409: "feedback_exists: the response already has feedback (the first is kept; rate each response once)",
        413: "request_too_large: the body is over routeiq_settings.limits.max_body_bytes",
        429: "quota_exceeded (a key's or team's rpm, tpm or budget), too_many_in_flight (the key's "
        "max_in_flight_per_key) or upstream_rate_limited; Retry-After when known",
        431: "request_headers_too_large: the headers are over routeiq_settings.limits.max_header_bytes",
        502: "upstream_error: the provider failed, refused the gateway's credentials or answered nonsense",
        503: "gateway_overloaded (max_in_flight reached, with Retry-After), upstream_unavailable (every deployment "
        "that could answer has its circuit open) or access_unavailable (key store, quota store or audit log down)",
        504: "upstream_timeout or upstream_deadline: the provider did not answer in time",
        UPSTREAM_4XX: "upstream_rejected: another 4xx the provider answered, passed on with its status",
    }
)
ALWAYS = (408, 413, 431)
"""Statuses the admission middleware can answer on any route, before the endpoint runs."""


class OpenAIErrorDetail(BaseModel):
    """`error` of an OpenAI error body; `code` is the gateway's stable code."""

    model_config = ConfigDict(extra="forbid")

    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """Every error the gateway sends: `{"error": {"message", "type", "param", "code"}}`."""

    model_config = ConfigDict(extra="forbid")

    error: OpenAIErrorDetail


class ChatCompletion(BaseModel):
    """A non-streamed chat completion as the deployment answered it."""

    model_config = OPEN

    id: str
    object: Literal["chat.completion"]
    choices: list[dict[str, Any]]
    model: str | None = None
    usage: dict[str, Any] | None = None


class Embedding(BaseModel):
    model_config = OPEN

    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingList(BaseModel):
    """An embeddings answer as the deployment gave it (`embedding` is base64 for `encoding_format: base64`)."""

    model_config = OPEN

    object: Literal["list"]
    data: list[Embedding]
    model: str | None = None
    usage: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """The virtual model first, then every configured deployment."""

    object: Literal["list"]
    data: list[ModelCard]


class FeedbackRecorded(BaseModel):
    id: str
    object: Literal["feedback"]
    recorded: bool
    known: bool


class Live(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """200 when ready, 503 with the same body while starting."""

    status: Literal["ready", "starting"]
    checks: dict[str, bool]
    router: dict[str, Any]
    upstreams: dict[str, dict[str, Any]]
    """Per deployment: its circuit and last upstream failure (a detail; it does not change the verdict)."""


class RouterStatus(BaseModel):
    model_config = OPEN

    virtual_model: str
    strategy: str
    mode: Literal["router", "fallback"]
    deployments: list[str]


class Key(BaseModel):
    """A virtual key as admin routes show it: never the secret, never its hash."""

    id: str
    object: Literal["key"]
    team: str | None
    role: Literal["admin", "operator", "user"]
    allowed_models: list[str]
    max_budget_usd: float | None
    rpm: int | None
    tpm: int | None
    expires_at: float | None
    revoked_at: float | None
    created_at: float


class NewKey(Key):
    key: str
    """The secret, shown this once."""


class KeyList(BaseModel):
    object: Literal["list"]
    data: list[Key]


def responses(
    ok: type[BaseModel] | None, *errors: int | str, stream: bool = False, text: bool = False
) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route decorator: 200 as `ok` (or plain text, plus SSE when `stream`), and each status
    in `errors` (plus 413 and 431, which any route can answer) as an OpenAI error."""
    content: dict[str, Any] = {}
    if text:
        content["text/plain"] = {"schema": {"type": "string"}}
    if stream:
        content[SSE_MEDIA_TYPE] = {"itemSchema": sse_event()}
    declared: dict[int | str, dict[str, Any]] = {200: {"description": "Success"}}
    if ok is not None:
        declared[200]["model"] = ok
    if content:
        declared[200]["content"] = content
    for status in sorted({*errors, *ALWAYS}, key=str):
        declared[status] = {"model": OpenAIError, "description": ERROR_MEANINGS[status]}
    return declared


def sse_event() -> dict[str, Any]:
    """One event of a streamed chat completion: a chunk, `[DONE]`, or a last `{"error": ...}` event."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "description": 'A chat.completion.chunk as JSON, "[DONE]", or {"error": ...} when the stream failed',
            },
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }


def json_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """`openapi_extra=` declaring the JSON body a route reads itself (raw bytes, then `model`)."""
    schema = inline_refs(model.model_json_schema())
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {JSON_MEDIA_TYPE: {"schema": schema}},
        }
    }


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `#/$defs/...` references replaced by the definitions: an OpenAPI document resolves
    `#/...` against itself, where pydantic's `$defs` do not exist. The request models are not recursive."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**resolve(defs[ref.removeprefix("#/$defs/")]), **resolve(rest)}
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
