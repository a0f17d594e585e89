"""Every error the replay provider can raise, each with a stable code and a message that says what to change.

Pure exception classes and their OpenAI-shaped bodies; turning them into HTTP responses is the app's job.

    Exception
    ├── ApiError (serving.api_error; also UnknownRouteError 404 and MethodNotAllowedError 405, shared)
    ├── ReplayError                    a client gets {"error": {"message", "type", "param", "code"}}
    │   ├── InvalidRequestError        400 invalid_request_error  body not JSON, or breaks the schema
    │   ├── ModelNotFoundError         404 model_not_found        model not in the outcomes file
    │   ├── PromptNotRecordedError     404 prompt_not_recorded    no row for this (model, prompt)
    │   └── InjectedFaultError         a fault knob fired; never while every fault rate is 0
    │       ├── UpstreamError          500 upstream_error
    │       └── RateLimitError         429 rate_limit_exceeded    with a Retry-After header
    └── ReplaySetupError               start-up only: outcomes or latency file unreadable or incomplete
"""

from __future__ import annotations

from typing import ClassVar

from serving.api_error import INVALID_REQUEST_TYPE, RATE_LIMIT_TYPE, SERVER_ERROR_TYPE, ApiError


class ReplayError(ApiError):
    """An error a client of the replay provider receives as an OpenAI-shaped JSON body with `status`."""

    code: ClassVar[str] = "replay_error"


class InvalidRequestError(ReplayError):
    """The body is not JSON, or a known field is missing or has the wrong type or value."""

    status = 400
    error_type = INVALID_REQUEST_TYPE
    code = "invalid_request_error"


class ModelNotFoundError(ReplayError):
    """The requested model is not one of the models in the outcomes file."""

    status = 404
    error_type = INVALID_REQUEST_TYPE
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model {model!r} is not served by this replay provider; "
            "GET /v1/models lists the models it serves, use one of those.",
            param="model",
        )


class PromptNotRecordedError(ReplayError):
    """The model is served, but the outcomes file has no answer of it for this prompt."""

    status = 404
    error_type = INVALID_REQUEST_TYPE
    code = "prompt_not_recorded"

    def __init__(self, model: str, prompt_id: str) -> None:
        super().__init__(
            f"No recorded answer of model {model!r} for this prompt (prompt id {prompt_id}, the last user "
            "message); send a prompt from the outcomes file, or pick a model that answered it.",
            param="messages",
        )


class InjectedFaultError(ReplayError):
    """A fault the settings asked for; clients should treat it like a real provider failure."""


class UpstreamError(InjectedFaultError):
    """An injected server error (`error_rate`)."""

    status = 500
    error_type = SERVER_ERROR_TYPE
    code = "upstream_error"

    def __init__(self) -> None:
        super().__init__("Injected upstream error (replay error_rate > 0); retry the request.")


class RateLimitError(InjectedFaultError):
    """An injected rate limit (`rate_limit_rate`), with the Retry-After the settings give."""

    status = 429
    error_type = RATE_LIMIT_TYPE
    code = "rate_limit_exceeded"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"Injected rate limit (replay rate_limit_rate > 0); retry after {retry_after_seconds} s.",
            retry_after=retry_after_seconds,
        )


class ReplaySetupError(Exception):
    """The replay provider cannot start: the message names the file and what it must contain."""
