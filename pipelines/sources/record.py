"""One observation as a source file states it, before prompt ids and splits are assigned.

Source readers yield these; they never decide splits or ids.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A (prompt, model) outcome read from a public data set; `split_hint` is the file's own split."""

    prompt: str
    task: str
    model: str
    quality: float | None
    cost_usd: float | None
    cost_source: str | None
    response: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    split_hint: str | None = None


class SourceFormatError(ValueError):
    """A source file is not in the layout its reader expects; the message names the file and the fix."""


def literal(text: str) -> Any:
    """Parse a Python literal stored as text (list or dict literals in the public CSV/JSON files)."""
    return ast.literal_eval(text)


def join_text_list(cell: str) -> str:
    """A cell holding a Python-list literal of strings, joined by newlines; a plain string is kept as is."""
    stripped = cell.strip()
    if not stripped.startswith("["):
        return cell
    try:
        parts = literal(stripped)
    except (ValueError, SyntaxError):
        return cell
    if not isinstance(parts, list):
        return cell
    return "\n".join(str(p) for p in parts)


def optional_float(cell: str | float | None) -> float | None:
    """An empty or missing cell is unknown (None), never 0."""
    if cell is None:
        return None
    if isinstance(cell, float):
        return cell
    stripped = cell.strip()
    return float(stripped) if stripped else None
