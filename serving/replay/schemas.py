"""The chat-completions request the replay provider accepts: known fields strict, unknown fields ignored.

Parsing and validation only; it never looks anything up. A bad body is a 400 `InvalidRequestError`, never 422.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from serving.replay.exceptions import InvalidRequestError

Role = Literal["system", "user", "assistant", "tool", "developer"]

_STRICT = ConfigDict(strict=True, extra="ignore", frozen=True)


class ContentPart(BaseModel):
    """One part of a message's content list; the text of `type: "text"` parts is the prompt."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    type: str


class Message(BaseModel):
    """One chat message; tool calls and other extras pass through ignored."""

    model_config = _STRICT

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def as_mapping(self) -> dict[str, Any]:
        """The message as the plain mapping `features.prompt` reads."""
        content = self.content
        if isinstance(content, list):
            return {"role": self.role, "content": [part.model_dump() for part in content]}
        return {"role": self.role, "content": content}


class StreamOptions(BaseModel):
    """OpenAI `stream_options`; `include_usage` adds a last chunk with the usage."""

    model_config = _STRICT

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions body. Sampling fields are checked, then ignored: answers are recorded."""

    model_config = _STRICT

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=1, description="one recorded answer per (model, prompt)")
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None

    @property
    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return self.stream_options is not None and self.stream_options.include_usage


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """Validate a raw request body, or raise `InvalidRequestError` naming the first bad field and the fix."""
    try:
        return ChatCompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request(exc.errors(include_url=False)) from exc


def invalid_request(errors: list[ErrorDetails]) -> InvalidRequestError:
    """The 400 error for pydantic errors: the first one names the parameter, the rest are counted."""
    first = errors[0]
    if first["type"] == "json_invalid":
        return InvalidRequestError(f"The request body is not valid JSON ({first['msg']}); send a JSON object.")
    param = ".".join(str(part) for part in first["loc"]) or None
    where = f"`{param}`" if param else "the request body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidRequestError(
        f"Invalid value for {where}: {first['msg']}{more}; fix it to match the OpenAI chat schema.",
        param=param,
    )
