"""Every error the gateway can raise, each with a stable code and a message that says what to change.

Pure exception classes; the app turns `GatewayError` into OpenAI-shaped responses.

    Exception
    ├── ApiError (serving.api_error; also UnknownRouteError 404 and MethodNotAllowedError 405, shared)
    │   └── GatewayError                  a client gets {"error": {"message", "type", "param", "code"}}
    │       ├── InvalidRequestError       400 invalid_request_error   body not JSON, breaks the schema, bad value
    │       ├── ForbiddenParameterError   400 forbidden_parameter     api_base/base_url/api_key/extra_headers
    │       ├── UnsupportedParameterError 400 unsupported_parameter   a field no allow-list admits (request_fields)
    │       ├── AuthenticationError       401 invalid_api_key         missing, wrong, expired or revoked key
    │       ├── PermissionDeniedError     403 permission_denied       the key's role or allowed_models refuse it
    │       │   └── FeedbackNotOwnerError 403 feedback_not_owner  feedback on a response another caller got
    │       ├── FeedbackExistsError       409 feedback_exists         the response was rated already
    │       ├── ModelNotFoundError        404 model_not_found         neither a deployment nor the virtual model
    │       ├── UpstreamStatusError       4xx as the provider said    the provider refused the request
    │       ├── UpstreamRateLimitError    429 upstream_rate_limited   with Retry-After when the provider gave one
    │       ├── QuotaExceededError        429 quota_exceeded   a key's or team's rpm/tpm (Retry-After) or budget
    │       ├── TooManyInFlightError      429 too_many_in_flight  limits.max_in_flight_per_key; with Retry-After
    │       ├── RequestTimeoutError       408 request_timeout  head or body slower than limits.*_read_seconds
    │       ├── InvalidHttpRequestError   400 invalid_http_request  bytes that are not HTTP/1.1 (connection closed)
    │       ├── UpstreamError             502 upstream_error          provider failed or answered nonsense
    │       ├── UpstreamTimeoutError      504 upstream_timeout
    │       │   └── UpstreamDeadlineError 504 upstream_deadline  a routeiq_settings.limits deadline passed
    │       ├── GatewayOverloadedError    503 gateway_overloaded  max_in_flight reached; with Retry-After
    │       ├── RequestTooLargeError      413 request_too_large   body over limits.max_body_bytes
    │       ├── HeadersTooLargeError      431 request_headers_too_large  headers over limits.max_header_bytes
    │       ├── ClientDisconnectedError   499 client_disconnected  never sent: recorded on the span
    │       └── AccessUnavailableError    503 access_unavailable  key store or required audit log failed
    └── GatewayConfigError                start-up only: the config file is unreadable or inconsistent
"""

from __future__ import annotations

from serving.api_error import AUTHENTICATION_TYPE, INVALID_REQUEST_TYPE, RATE_LIMIT_TYPE, SERVER_ERROR_TYPE, ApiError

MAX_SHOWN_NAME = 64
"""Longest client-chosen name an error message repeats (a field or model name can be megabytes long)."""


class GatewayError(ApiError):
    """An error a gateway client receives as an OpenAI-shaped JSON body with `status`."""

    code = "gateway_error"


class InvalidRequestError(GatewayError):
    """The body is not JSON, or a field is missing or has the wrong type or value."""

    status = 400
    error_type = INVALID_REQUEST_TYPE
    code = "invalid_request_error"


class ForbiddenParameterError(GatewayError):
    """The client tried to choose the upstream or its credentials; only the operator's config does that."""

    status = 400
    error_type = INVALID_REQUEST_TYPE
    code = "forbidden_parameter"

    def __init__(self, param: str) -> None:
        super().__init__(
            f"`{param}` cannot be set by a client: upstreams and their credentials come from the gateway's "
            "config (model_list); remove the field and pick a model by name.",
            param=param,
        )


class UnsupportedParameterError(GatewayError):
    """A body field that is not a documented OpenAI request field nor a provider parameter the operator enabled."""

    status = 400
    error_type = INVALID_REQUEST_TYPE
    code = "unsupported_parameter"

    def __init__(self, param: str) -> None:
        shown = param if len(param) <= MAX_SHOWN_NAME else param[:MAX_SHOWN_NAME] + "…"
        super().__init__(
            f"Unrecognized request argument supplied: {shown!r}. The gateway forwards only OpenAI's documented "
            "request fields; remove it (operators can forward a provider parameter by listing it in "
            "routeiq_settings.requests.provider_params).",
            param=shown,
        )


class AuthenticationError(GatewayError):
    """No bearer key, or not the configured one."""

    status = 401
    error_type = AUTHENTICATION_TYPE
    code = "invalid_api_key"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Missing or invalid API key; send `Authorization: Bearer <key>` with the gateway's key "
            "(general_settings.master_key) or a virtual key from POST /admin/keys."
        )


class PermissionDeniedError(GatewayError):
    """A valid key whose role or `allowed_models` does not cover this request."""

    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class FeedbackNotOwnerError(PermissionDeniedError):
    """Feedback on a response this gateway remembers another caller receiving, from a key whose role may not
    rate others' responses (`routeiq_settings.feedback.raters`)."""

    code = "feedback_not_owner"

    def __init__(self, response_id: str, raters: tuple[str, ...]) -> None:
        who = f"or a key with role {' or '.join(raters)} " if raters else ""
        super().__init__(
            f"Response {response_id!r} was returned to another caller; only the key that made the request {who}"
            "may rate it (routeiq_settings.feedback.raters). Post feedback with the key you sent the request with.",
            param="id",
        )


class FeedbackExistsError(GatewayError):
    """A response the gateway remembers already has its feedback: the first is kept, later posts are refused,
    so a training label is never rewritten."""

    status = 409
    error_type = INVALID_REQUEST_TYPE
    code = "feedback_exists"

    def __init__(self, response_id: str) -> None:
        super().__init__(
            f"Response {response_id!r} already has feedback; the gateway keeps the first score of each response "
            "and refuses later ones, so a label cannot be rewritten. Rate each response once.",
            param="id",
        )


class ModelNotFoundError(GatewayError):
    """The requested model is neither a configured deployment nor the virtual routing model."""

    status = 404
    error_type = INVALID_REQUEST_TYPE
    code = "model_not_found"

    def __init__(self, model: str, virtual_model: str) -> None:
        super().__init__(
            f"The model {model!r} is not configured on this gateway; use {virtual_model!r} to let the router "
            "choose, or one of the names GET /v1/models lists.",
            param="model",
        )


class KeyNotFoundError(GatewayError):
    """An admin route named a virtual key id the key store does not hold."""

    status = 404
    error_type = INVALID_REQUEST_TYPE
    code = "key_not_found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"There is no key {key_id!r}; GET /admin/keys lists the ids.", param="key_id")


class UpstreamStatusError(GatewayError):
    """The provider rejected the request with a 4xx; its status and message are passed on."""

    error_type = INVALID_REQUEST_TYPE
    code = "upstream_rejected"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.upstream_status = status

    def status_code(self) -> int:
        return self.upstream_status


class UpstreamRateLimitError(GatewayError):
    """The provider rate-limited the request."""

    status = 429
    error_type = RATE_LIMIT_TYPE
    code = "upstream_rate_limited"

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after)


class QuotaExceededError(GatewayError):
    """A key or its team is over its rpm or tpm (retry after the window resets) or has spent its budget."""

    status = 429
    error_type = RATE_LIMIT_TYPE
    code = "quota_exceeded"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message, retry_after=retry_after)


class UpstreamError(GatewayError):
    """The provider failed (5xx, connection error, or a body that is not a completion)."""

    status = 502
    error_type = SERVER_ERROR_TYPE
    code = "upstream_error"


class UpstreamTimeoutError(GatewayError):
    """The provider did not answer in time."""

    status = 504
    error_type = SERVER_ERROR_TYPE
    code = "upstream_timeout"


class UpstreamDeadlineError(UpstreamTimeoutError):
    """A deadline of `routeiq_settings.limits` passed (total, first byte or gap between stream events)."""

    code = "upstream_deadline"


class UpstreamUnavailableError(GatewayError):
    """Every deployment that could answer has its circuit open (it kept failing); retry once one cools down."""

    status = 503
    error_type = SERVER_ERROR_TYPE
    code = "upstream_unavailable"

    def __init__(self, models: tuple[str, ...], retry_after: int) -> None:
        names = ", ".join(repr(m) for m in models)
        super().__init__(
            f"Model {names} failed repeatedly and is paused by its circuit breaker; retry after {retry_after} s "
            "or pick another model (operators: add `routeiq_settings.failover.fallbacks` for it)."
            if len(models) == 1
            else f"Models {names} all failed repeatedly and are paused by their circuit breakers; retry after "
            f"{retry_after} s or pick another model.",
            retry_after=retry_after,
        )


class GatewayOverloadedError(GatewayError):
    """`limits.max_in_flight` requests are already being served; the client should retry after a pause."""

    status = 503
    error_type = SERVER_ERROR_TYPE
    code = "gateway_overloaded"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"The gateway is serving its limit of {limit} requests at once; retry after {retry_after} s "
            "(operators: raise routeiq_settings.limits.max_in_flight or add replicas).",
            retry_after=retry_after,
        )


class RequestTooLargeError(GatewayError):
    """The request body is larger than `limits.max_body_bytes`."""

    status = 413
    error_type = INVALID_REQUEST_TYPE
    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than this gateway's limit of {limit} bytes; send a shorter prompt "
            "(operators: routeiq_settings.limits.max_body_bytes)."
        )


class HeadersTooLargeError(GatewayError):
    """The request headers together are larger than `limits.max_header_bytes`."""

    status = 431
    error_type = INVALID_REQUEST_TYPE
    code = "request_headers_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The request headers total {size} bytes, over this gateway's limit of {limit}; send fewer or "
            "shorter headers (operators: routeiq_settings.limits.max_header_bytes)."
        )


class TooManyInFlightError(GatewayError):
    """The caller's key already has `limits.max_in_flight_per_key` requests being served."""

    status = 429
    error_type = RATE_LIMIT_TYPE
    code = "too_many_in_flight"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"This key already has {limit} requests in flight, its limit; lower your concurrency (wait for an "
            f"answer before sending more) and retry after {retry_after} s "
            "(operators: routeiq_settings.limits.max_in_flight_per_key).",
            retry_after=retry_after,
        )


class RequestTimeoutError(GatewayError):
    """The request's head or body arrived slower than `limits.header_read_seconds`/`body_read_seconds`; the
    connection is closed after this answer."""

    status = 408
    error_type = INVALID_REQUEST_TYPE
    code = "request_timeout"

    def __init__(self, part: str, seconds: float, setting: str) -> None:
        super().__init__(
            f"The request's {part} did not arrive within {seconds:g} s; send it at once, not trickled "
            f"(operators: routeiq_settings.limits.{setting})."
        )

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Connection": "close"}


class InvalidHttpRequestError(GatewayError):
    """The bytes received are not a valid HTTP/1.1 request; the connection is closed after this answer."""

    status = 400
    error_type = INVALID_REQUEST_TYPE
    code = "invalid_http_request"

    def __init__(self) -> None:
        super().__init__(
            "The bytes received are not a valid HTTP/1.1 request (request line, headers or chunked framing); "
            "send a well-formed request, e.g. with an HTTP client library."
        )

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Connection": "close"}


class ClientDisconnectedError(GatewayError):
    """The client went away before its answer was sent; only spans and metrics see this (nginx's 499)."""

    status = 499
    error_type = INVALID_REQUEST_TYPE
    code = "client_disconnected"


class AccessUnavailableError(GatewayError):
    """The key store cannot answer, or a required audit entry cannot be written: deny rather than guess."""

    status = 503
    error_type = SERVER_ERROR_TYPE
    code = "access_unavailable"


class GatewayConfigError(ValueError):
    """The gateway cannot start: the message names the config key and what it must hold."""
