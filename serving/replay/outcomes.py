"""The recorded answers: an outcomes parquet file loaded into a (model, prompt id) → record index.

Called from the app lifespan only; it never reads a file at import time and never touches HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.prompt import estimate_tokens
from features.schema import COST_USD, INPUT_TOKENS, MODEL, OUTPUT_TOKENS, PROMPT, PROMPT_ID, RESPONSE
from serving.replay.exceptions import ModelNotFoundError, PromptNotRecordedError, ReplaySetupError

REPLAY_COLUMNS = (PROMPT_ID, PROMPT, MODEL, RESPONSE, COST_USD, INPUT_TOKENS, OUTPUT_TOKENS)


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded answer and its usage; token counts are recorded, or estimated when not recorded."""

    text: str
    """The recorded answer; "" when the file has a row but no response text."""
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None

    def usage(self) -> dict[str, int | float]:
        """OpenAI `usage`, plus `cost` (USD, as OpenRouter reports it) when a cost was recorded."""
        usage: dict[str, int | float] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cost_usd is not None:
            usage["cost"] = self.cost_usd
        return usage


@dataclass(frozen=True, slots=True)
class OutcomeIndex:
    """Served models (sorted) and the recorded answer of each (model, prompt id)."""

    models: tuple[str, ...]
    records: Mapping[tuple[str, str], Record]
    modified: int
    """The outcomes file's modification time (Unix seconds), reported as each model's `created`."""

    def require_model(self, model: str) -> None:
        """Raise `ModelNotFoundError` unless `model` is served."""
        if model not in self.models:
            raise ModelNotFoundError(model)

    def lookup(self, model: str, prompt_id: str) -> Record:
        """The record of (model, prompt id), or `ModelNotFoundError` / `PromptNotRecordedError`."""
        record = self.records.get((model, prompt_id))
        if record is None:
            self.require_model(model)
            raise PromptNotRecordedError(model, prompt_id)
        return record


def load_index(path: Path) -> OutcomeIndex:
    """Read the replay columns of an outcomes parquet file; a repeated (model, prompt) keeps its first row."""
    table = _read(path)
    records: dict[tuple[str, str], Record] = {}
    for row in _rows(table):
        key = (str(row[MODEL]), str(row[PROMPT_ID]))
        if key not in records:
            records[key] = _record(row)
    models = tuple(sorted({model for model, _ in records}))
    return OutcomeIndex(models=models, records=records, modified=int(os.stat(path).st_mtime))


def _read(path: Path) -> pa.Table:
    try:
        return pq.read_table(path, columns=list(REPLAY_COLUMNS))
    except (OSError, pa.ArrowException) as exc:
        raise ReplaySetupError(
            f"cannot read outcomes file {path} ({exc}); pass a parquet outcome table "
            f"(features.schema.OUTCOME_SCHEMA) with at least the columns {list(REPLAY_COLUMNS)}"
        ) from exc


def _rows(table: pa.Table) -> Iterator[dict[str, object]]:
    columns = {name: table.column(name).to_pylist() for name in REPLAY_COLUMNS}
    for i in range(table.num_rows):
        yield {name: values[i] for name, values in columns.items()}


def _record(row: Mapping[str, object]) -> Record:
    # Unrecorded token counts are estimated from the recorded prompt and answer text (ceil(chars / 4)).
    text = row[RESPONSE] if isinstance(row[RESPONSE], str) else ""
    prompt = row[PROMPT] if isinstance(row[PROMPT], str) else ""
    input_tokens, output_tokens, cost = row[INPUT_TOKENS], row[OUTPUT_TOKENS], row[COST_USD]
    return Record(
        text=text,
        prompt_tokens=input_tokens if isinstance(input_tokens, int) else estimate_tokens(prompt),
        completion_tokens=output_tokens if isinstance(output_tokens, int) else estimate_tokens(text),
        cost_usd=float(cost) if isinstance(cost, float | int) else None,
    )
