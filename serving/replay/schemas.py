"""The chat-completions and embeddings requests the replay provider accepts: known fields strict, unknown ignored.

Parsing and validation only; it never looks anything up. A bad body is a 400 `InvalidRequestError`, never 422.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import ErrorDetails

from serving.openai_schema import STRICT, Message, StreamOptions, describe_errors
from serving.replay.exceptions import InvalidRequestError

Text = Annotated[str, Field(min_length=1)]
Tokens = Annotated[list[int], Field(min_length=1)]
EmbeddingsInput = (
    Text | Annotated[list[Text], Field(min_length=1)] | Tokens | Annotated[list[Tokens], Field(min_length=1)]
)
"""One text, texts, one token array, or token arrays; nothing empty."""


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions body. Sampling fields are checked, then ignored: answers are recorded."""

    model_config = STRICT

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


class EmbeddingsRequest(BaseModel):
    """The OpenAI embeddings body: texts (or token arrays) to embed; `dimensions` is checked, then ignored."""

    model_config = STRICT

    model: str = Field(min_length=1)
    input: EmbeddingsInput = Field(union_mode="left_to_right")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @property
    def items(self) -> list[str | list[int]]:
        """The input as a list of items to embed: texts, or token arrays (a flat list of ints is one item)."""
        if isinstance(self.input, str):
            return [self.input]
        tokens = [token for token in self.input if isinstance(token, int)]
        if tokens:
            return [tokens]
        return [item for item in self.input if isinstance(item, str | list)]


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """Validate a raw request body, or raise `InvalidRequestError` naming the first bad field and the fix."""
    try:
        return ChatCompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request(exc.errors(include_url=False)) from exc


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    """Validate a raw embeddings body, or raise `InvalidRequestError` naming the first bad field and the fix."""
    try:
        return EmbeddingsRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors[0]["loc"][:1] == ("input",):
            # A union reports one error per member; one sentence about the accepted shapes says more.
            raise InvalidRequestError(
                "Invalid value for `input`: send a non-empty string, a list of non-empty strings, a token array "
                "or a list of token arrays.",
                param="input",
            ) from exc
        raise invalid_request(errors, "OpenAI embeddings schema") from exc


def invalid_request(errors: list[ErrorDetails], schema: str = "OpenAI chat schema") -> InvalidRequestError:
    """The 400 error for pydantic errors: the first one names the parameter, the rest are counted."""
    message, param = describe_errors(errors, schema)
    return InvalidRequestError(message, param=param)
