"""The OpenAI error shape shared by the gateway and the replay provider: a base exception, its response,
the routing errors both servers raise, and the handlers that turn any error into that shape.

Each server declares its own subclasses for everything else and installs the handlers in its app factory.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import ClassVar

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException

from serving.security.scrub import scrub as scrub_secrets

INVALID_REQUEST_TYPE = "invalid_request_error"
SERVER_ERROR_TYPE = "server_error"
RATE_LIMIT_TYPE = "rate_limit_error"
AUTHENTICATION_TYPE = "authentication_error"


class ApiError(Exception):
    """An error a client receives as `{"error": {"message", "type", "param", "code"}}` with `status`."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = SERVER_ERROR_TYPE
    code: ClassVar[str] = "server_error"

    def __init__(self, message: str, param: str | None = None, *, retry_after: int | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        """Seconds (or an HTTP date) the client should wait before retrying; sent as `Retry-After`."""

    def status_code(self) -> int:
        """The HTTP status: the class's `status` unless the instance carries the provider's own."""
        return self.status

    def headers(self) -> dict[str, str]:
        """Extra response headers: `Retry-After` when the error carries one."""
        if self.retry_after is None or self.retry_after == "":
            return {}
        return {"Retry-After": str(self.retry_after)}

    def body(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI error body: `{"error": {"message", "type", "param", "code"}}`."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


def error_response(error: ApiError, scrub: Callable[[str], str] = scrub_secrets) -> Response:
    """The OpenAI-shaped JSON response of `error`, with its status and headers; `scrub` hides any secret its
    message carries (an upstream may echo the request's credentials back)."""
    body = error.body()
    body["error"]["message"] = scrub(body["error"]["message"] or "")
    return Response(
        orjson.dumps(body),
        status_code=error.status_code(),
        media_type="application/json",
        headers=error.headers(),
    )


class UnknownRouteError(ApiError):
    """No endpoint at this path."""

    status = 404
    error_type = INVALID_REQUEST_TYPE
    code = "unknown_route"


class MethodNotAllowedError(ApiError):
    """The path exists but not with this HTTP method."""

    status = 405
    error_type = INVALID_REQUEST_TYPE
    code = "method_not_allowed"


def install_error_handlers(
    app: FastAPI,
    served_routes: str,
    invalid_request: Callable[[list[ErrorDetails]], ApiError],
    scrub: Callable[[str], str] = scrub_secrets,
    observe: Callable[[Request, ApiError], None] | None = None,
) -> None:
    """Answer every ApiError, unknown path or method, and FastAPI validation error in the OpenAI shape.

    `served_routes` is named in 404/405 messages; `invalid_request` builds the server's own 400 error; `scrub`
    removes secrets from every message (the gateway passes one that also knows its configured keys); `observe`
    sees every error answered (the gateway counts them).
    """

    def answer(request: Request, error: ApiError) -> Response:
        if observe is not None:
            observe(request, error)
        return error_response(error, scrub)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return answer(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        where = f"{request.method} {request.url.path}"
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            return answer(
                request, MethodNotAllowedError(f"{where} is not allowed; this server serves {served_routes}.")
            )
        return answer(request, UnknownRouteError(f"{where} does not exist; this server serves {served_routes}."))

    async def validation_error(request: Request, exc: Exception) -> Response:
        # Endpoints parse bodies themselves; this only guarantees FastAPI's 422 can never escape.
        assert isinstance(exc, RequestValidationError)
        return answer(request, invalid_request(list(exc.errors())))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
