"""The outcome table: every column name, its type and the allowed values, written once.

Pure definitions and in-memory validation only; reading and writing files is the caller's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import pyarrow as pa

PROMPT_ID: Final = "prompt_id"
PROMPT: Final = "prompt"
TASK: Final = "task"
MODEL: Final = "model"
QUALITY: Final = "quality"
COST_USD: Final = "cost_usd"
COST_SOURCE: Final = "cost_source"
INPUT_TOKENS: Final = "input_tokens"
OUTPUT_TOKENS: Final = "output_tokens"
LATENCY_MS: Final = "latency_ms"
RESPONSE: Final = "response"
SOURCE: Final = "source"
SPLIT: Final = "split"
PROPENSITY: Final = "propensity"
ROUTER_VERSION: Final = "router_version"
OBSERVED_AT: Final = "observed_at"

COST_RECORDED: Final = "recorded"
COST_PRICED: Final = "priced"
COST_ESTIMATED: Final = "estimated"
COST_SOURCES: Final = (COST_RECORDED, COST_PRICED, COST_ESTIMATED)

TRAIN: Final = "train"
VALID: Final = "valid"
TEST: Final = "test"
SPLITS: Final = (TRAIN, VALID, TEST)

OUTCOME_SCHEMA: Final = pa.schema(
    [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(PROMPT, pa.string(), nullable=False),
        pa.field(TASK, pa.string(), nullable=False),
        pa.field(MODEL, pa.string(), nullable=False),
        pa.field(QUALITY, pa.float64()),
        pa.field(COST_USD, pa.float64()),
        pa.field(COST_SOURCE, pa.string()),
        pa.field(INPUT_TOKENS, pa.int64()),
        pa.field(OUTPUT_TOKENS, pa.int64()),
        pa.field(LATENCY_MS, pa.float64()),
        pa.field(RESPONSE, pa.string()),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(SPLIT, pa.string(), nullable=False),
        pa.field(PROPENSITY, pa.float64()),
        pa.field(ROUTER_VERSION, pa.string()),
        pa.field(OBSERVED_AT, pa.timestamp("us", tz="UTC")),
    ]
)
"""One row per observed (prompt, model) result. `quality` is 0..1 and null when unknown (never 0)."""

OUTCOME_COLUMNS: Final = tuple(OUTCOME_SCHEMA.names)


class OutcomeTableError(ValueError):
    """A table does not satisfy the outcome-table contract; the message says which rule and where."""


def conform(table: pa.Table) -> pa.Table:
    """Return `table` with the canonical column order and types, or raise `OutcomeTableError`."""
    missing = [name for name in OUTCOME_COLUMNS if name not in table.column_names]
    if missing:
        raise OutcomeTableError(f"outcome table lacks columns {missing}; expected {list(OUTCOME_COLUMNS)}")
    try:
        table = table.select(list(OUTCOME_COLUMNS)).cast(OUTCOME_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise OutcomeTableError(f"outcome table has a column of the wrong type: {exc}") from exc
    _check_values(table)
    return table


def _check_values(table: pa.Table) -> None:
    quality = [q for q in table.column(QUALITY).to_pylist() if q is not None]
    if any(not 0.0 <= q <= 1.0 for q in quality):
        raise OutcomeTableError("quality must lie in [0, 1] (null for unknown)")
    _check_allowed(table.column(SPLIT).to_pylist(), SPLITS, SPLIT)
    _check_allowed(table.column(COST_SOURCE).to_pylist(), (*COST_SOURCES, None), COST_SOURCE)
    propensity = [p for p in table.column(PROPENSITY).to_pylist() if p is not None]
    if any(not 0.0 < p <= 1.0 for p in propensity):
        raise OutcomeTableError("propensity must lie in (0, 1] (null for full-information data)")
    ids = table.column(PROMPT_ID).to_pylist()
    splits = table.column(SPLIT).to_pylist()
    seen: dict[str, str] = {}
    for prompt_id, split in zip(ids, splits, strict=True):
        if seen.setdefault(prompt_id, split) != split:
            raise OutcomeTableError(f"prompt {prompt_id} appears in splits {seen[prompt_id]!r} and {split!r}")


def _check_allowed(values: Iterable[object], allowed: Iterable[object], column: str) -> None:
    allowed_set = set(allowed)
    bad = sorted({str(v) for v in values if v not in allowed_set})
    if bad:
        raise OutcomeTableError(f"column {column!r} has values {bad}; allowed: {sorted(map(str, allowed_set))}")
