"""Prompt statistics: length, code and math markers, question form, language hints. Pure, no fitted state."""

from __future__ import annotations

import math
import re
from typing import Final

import numpy as np
import numpy.typing as npt

# Plain substring counts (str.count runs in C): a regex alternation here costs more than all else together.
CODE_MARKERS: Final = (
    "```",
    "def ",
    "class ",
    "import ",
    "return",
    "{",
    "}",
    ";",
    "==",
    "->",
    "python",
    "function",
)
MATH_MARKERS: Final = ("$", "\\frac", "\\sqrt", "^", "=", "+", "solve", "equation", "integer", "sum of")
QUESTION_START: Final = re.compile(r"^\s*(what|which|who|whom|whose|when|where|why|how|is|are|can|does|do)\b", re.I)
CHOICE_LINE: Final = re.compile(r"^\s*\(?[A-Ea-e][).:]\s", re.M)
NON_LATIN: Final = re.compile(r"[^\x00-\u024f]")
CJK: Final = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
CYRILLIC: Final = re.compile(r"[\u0400-\u04ff]")
DIGIT: Final = re.compile(r"\d")
UPPER: Final = re.compile(r"[A-Z]")

NAMES: Final = (
    "log_chars",
    "log_words",
    "log_lines",
    "digit_share",
    "upper_share",
    "code_markers",
    "math_markers",
    "ends_with_question",
    "starts_with_question_word",
    "choice_lines",
    "non_latin_share",
    "has_cjk",
    "has_cyrillic",
)


def prompt_stats(text: str, full_length: int | None = None) -> list[float]:
    """The statistics of one prompt, in the order of `NAMES`; lengths are of the full prompt when given."""
    length = len(text) if full_length is None else full_length
    chars = max(len(text), 1)
    lower = text.lower()
    stripped = text.rstrip()
    return [
        math.log1p(length),
        math.log1p(len(text.split()) * length / chars),
        math.log1p(text.count("\n")),
        len(DIGIT.findall(text)) / chars,
        len(UPPER.findall(text)) / chars,
        math.log1p(sum(lower.count(marker) for marker in CODE_MARKERS)),
        math.log1p(sum(lower.count(marker) for marker in MATH_MARKERS)),
        float(stripped.endswith("?")),
        float(bool(QUESTION_START.match(text))),
        math.log1p(len(CHOICE_LINE.findall(text))),
        len(NON_LATIN.findall(text)) / chars,
        float(bool(CJK.search(text))),
        float(bool(CYRILLIC.search(text))),
    ]


def stats_matrix(prompts: list[str]) -> npt.NDArray[np.float32]:
    """Statistics of many prompts, one row each."""
    return np.asarray([prompt_stats(p) for p in prompts], dtype=np.float32).reshape(len(prompts), len(NAMES))
