"""Pieces of the OpenAI chat schema shared by the gateway and the replay provider: messages, stream options,
and the one-line description of a validation error. Parsing only; no lookups, no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails

Role = Literal["system", "user", "assistant", "tool", "developer"]

STRICT = ConfigDict(strict=True, extra="ignore", frozen=True)


class ContentPart(BaseModel):
    """One part of a message's content list; the text of `type: "text"` parts is the prompt."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    type: str


class Message(BaseModel):
    """One chat message; tool calls and other extras pass through ignored."""

    model_config = STRICT

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

    model_config = STRICT

    include_usage: bool = False


def describe_errors(errors: list[ErrorDetails], schema: str) -> tuple[str, str | None]:
    """(message, param) for pydantic errors: the first one names the parameter, the rest are counted."""
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"The request body is not valid JSON ({first['msg']}); send a JSON object.", None
    param = ".".join(str(part) for part in first["loc"]) or None
    where = f"`{param}`" if param else "the request body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"Invalid value for {where}: {first['msg']}{more}; fix it to match the {schema}.", param
