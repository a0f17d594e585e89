"""Prompt and answer text → hashed token counts and answer statistics, for the cascade family's verifier.

Pure and stateless (CRC-32 hashing is stable across processes); nothing here is fitted or decides.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from typing import Final

import numpy as np

from features.text_stats import NAMES as PROMPT_STAT_NAMES
from features.text_stats import prompt_stats
from routers.dataset import FloatMatrix

TOKEN: Final = re.compile(r"\w+|[^\w\s]")
WORD: Final = re.compile(r"\w+")
CHOICE_START: Final = re.compile(r"^\s*\(?[A-Ea-e]\b")
DEFINED: Final = re.compile(r"\bdef\s+(\w+)\s*\(")
ASSERTED: Final = re.compile(r"\bassert\s+(?:not\s+)?\(?\s*(\w+)\s*\(")
MAX_ANSWER_TOKENS: Final = 400
ANSWER_STAT_NAMES: Final = (
    "log_chars",
    "log_lines",
    "single_token",
    "prompt_overlap",
    "defines_function",
    "starts_with_choice",
    "defines_asserted_name",
    "empty",
)
PROMPT_STATS: Final = len(PROMPT_STAT_NAMES)
ANSWER_STATS: Final = len(ANSWER_STAT_NAMES)


def hashed_counts(tokens: Sequence[str], dims: int, salt: str) -> FloatMatrix:
    """Token counts hashed into `dims` buckets (salted per text field), scaled to unit L2 norm."""
    vector = np.zeros(dims)
    for token in tokens:
        vector[zlib.crc32(f"{salt}:{token}".encode()) % dims] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def prompt_blocks(prompts: Sequence[str], dims: int, tail_chars: int) -> tuple[FloatMatrix, FloatMatrix]:
    """(hashed tokens of each prompt's last `tail_chars` characters, prompt statistics of that tail).

    The tail holds the question actually asked: few-shot prompts repeat the same examples up front.
    """
    hashed = np.zeros((len(prompts), dims))
    stats = np.zeros((len(prompts), PROMPT_STATS))
    for i, prompt in enumerate(prompts):
        tail = prompt[-tail_chars:]
        hashed[i] = hashed_counts(TOKEN.findall(tail.lower()), dims, "p")
        stats[i] = prompt_stats(tail, full_length=len(prompt))
    return hashed, stats


def answer_blocks(prompts: Sequence[str], answers: Sequence[str], dims: int) -> tuple[FloatMatrix, FloatMatrix]:
    """(hashed tokens of each answer, answer statistics in the order of `ANSWER_STAT_NAMES`)."""
    hashed = np.zeros((len(answers), dims))
    stats = np.zeros((len(answers), ANSWER_STATS))
    for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        tokens = TOKEN.findall(answer.lower())[:MAX_ANSWER_TOKENS]
        hashed[i] = hashed_counts(tokens, dims, "a")
        stats[i] = answer_stats(prompt, answer)
    return hashed, stats


def answer_stats(prompt: str, answer: str) -> list[float]:
    """Shape of the answer and whether it responds to what was asked (choice letter, asserted function)."""
    words = WORD.findall(answer.lower())
    prompt_words = set(WORD.findall(prompt.lower()))
    asserted = set(ASSERTED.findall(prompt))
    defined = set(DEFINED.findall(answer))
    return [
        math.log1p(len(answer)),
        math.log1p(answer.strip().count("\n")),
        float(len(words) <= 1),
        sum(w in prompt_words for w in words) / len(words) if words else 0.0,
        float(bool(defined)),
        float(bool(CHOICE_START.match(answer))),
        float(bool(asserted & defined)) if asserted else 0.0,
        float(not answer.strip()),
    ]
