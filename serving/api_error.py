"""The OpenAI error shape shared by the gateway and the replay provider: a base exception and its response.

Exception classes and encoding only; each server declares its own subclasses and installs the handlers.
"""

from __future__ import annotations

from typing import ClassVar

import orjson
from fastapi import Response

INVALID_REQUEST_TYPE = "invalid_request_error"
SERVER_ERROR_TYPE = "server_error"
RATE_LIMIT_TYPE = "rate_limit_error"
AUTHENTICATION_TYPE = "authentication_error"


class ApiError(Exception):
    """An error a client receives as `{"error": {"message", "type", "param", "code"}}` with `status`."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = SERVER_ERROR_TYPE
    code: ClassVar[str] = "server_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def status_code(self) -> int:
        """The HTTP status: the class's `status` unless the instance carries the provider's own."""
        return self.status

    def headers(self) -> dict[str, str]:
        """Extra response headers; none by default."""
        return {}

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


def error_response(error: ApiError) -> Response:
    """The OpenAI-shaped JSON response of `error`, with its status and headers."""
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status_code(),
        media_type="application/json",
        headers=error.headers(),
    )
