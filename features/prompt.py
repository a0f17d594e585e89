"""Prompt identity and size: the normalised text, its stable id, and the token estimate.

The gateway, the replay provider and the importers all call these, so one prompt has one id everywhere.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Final

CHARS_PER_TOKEN: Final = 4
"""The usual rule of thumb for English text with BPE tokenizers; used only when no count was recorded."""


def normalise_prompt(text: str) -> str:
    """Unicode NFC, Unix newlines, no surrounding whitespace. Inner whitespace is kept: it matters in code."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def prompt_id(text: str) -> str:
    """Stable id of a prompt: the first 16 hex digits of SHA-256 over the normalised text."""
    return hashlib.sha256(normalise_prompt(text).encode("utf-8")).hexdigest()[:16]


def estimate_tokens(text: str | None) -> int:
    """Token count estimated as ceil(characters / 4); 0 for no text."""
    if not text:
        return 0
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def clip(text: str, max_chars: int) -> str:
    """Head and tail of a long prompt: the first quarter of `max_chars` (instructions) and the last three
    quarters (the actual question, after any shared few-shot prefix)."""
    if len(text) <= max_chars:
        return text
    head = max_chars // 4
    return text[:head] + "\n" + text[len(text) - (max_chars - head) :]


def message_text(content: Any) -> str:
    """Text of one chat message's `content`: a string, or the `text` parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [part.get("text", "") for part in content if isinstance(part, Mapping) and part.get("type") == "text"]
    return "\n".join(p for p in parts if isinstance(p, str))


def prompt_from_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """The prompt a router sees: the text of the last user message ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""
