"""Builds, writes and reads the outcome table (features/schema.py) from source records.

Owns prompt ids, de-duplication and split assignment for imports; the readers in sources/ only parse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features import schema
from features.prompt import normalise_prompt, prompt_id
from pipelines.sources import SourceFormatError, SourceRecord, reader
from pipelines.splits import SplitParams, assign_splits


@dataclass
class ImportStats:
    """What an import did, for the one-line report the CLI prints."""

    records: int = 0
    rows: int = 0
    duplicates: int = 0
    prompts: int = 0
    unknown_quality: int = 0
    prompts_in_several_files: int = 0
    per_split: dict[str, int] = field(default_factory=dict)


def build_table(records: Iterable[SourceRecord], source: str, params: SplitParams) -> tuple[pa.Table, ImportStats]:
    """One row per (prompt_id, model); a duplicate keeps the first record with a known quality."""
    stats = ImportStats()
    kept: dict[tuple[str, str], SourceRecord] = {}
    hints: dict[str, set[str]] = defaultdict(set)
    for record in records:
        stats.records += 1
        pid = prompt_id(record.prompt)
        if record.split_hint:
            hints[pid].add(record.split_hint)
        else:
            hints.setdefault(pid, set())
        key = (pid, record.model)
        if key in kept:
            stats.duplicates += 1
            if kept[key].quality is not None or record.quality is None:
                continue
        kept[key] = record
    splits = assign_splits(hints, params)
    rows = [_row(pid, record, source, splits[pid]) for (pid, _), record in kept.items()]
    table = schema.conform(pa.Table.from_pylist(rows, schema=schema.OUTCOME_SCHEMA))
    stats.rows = table.num_rows
    stats.prompts = len(splits)
    stats.unknown_quality = sum(1 for r in kept.values() if r.quality is None)
    stats.prompts_in_several_files = sum(1 for h in hints.values() if len(h) > 1)
    for split in splits.values():
        stats.per_split[split] = stats.per_split.get(split, 0) + 1
    return table, stats


def import_source(name: str, path: Path, params: SplitParams | None = None) -> tuple[pa.Table, ImportStats]:
    """Read a source directory in place and return its outcome table and what the import did."""
    if not path.is_dir():
        raise SourceFormatError(f"{path} is not a directory; pass the {name}/ directory of the routing data")
    return build_table(reader(name)(path), name, params or SplitParams())


def _row(pid: str, record: SourceRecord, source: str, split: str) -> dict[str, object]:
    return {
        schema.PROMPT_ID: pid,
        schema.PROMPT: normalise_prompt(record.prompt),
        schema.TASK: record.task,
        schema.MODEL: record.model,
        schema.QUALITY: record.quality,
        schema.COST_USD: record.cost_usd,
        schema.COST_SOURCE: record.cost_source,
        schema.INPUT_TOKENS: record.input_tokens,
        schema.OUTPUT_TOKENS: record.output_tokens,
        schema.LATENCY_MS: None,
        schema.RESPONSE: record.response,
        schema.SOURCE: source,
        schema.SPLIT: split,
        schema.PROPENSITY: None,
        schema.ROUTER_VERSION: None,
        schema.OBSERVED_AT: None,
    }


def write_outcomes(table: pa.Table, path: Path) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(schema.conform(table), partial, compression="zstd")
    partial.replace(path)


def read_outcomes(path: Path) -> pa.Table:
    """Read and validate an outcome table; a missing or foreign file raises with what to change."""
    if not path.is_file():
        raise FileNotFoundError(f"outcome table {path} not found; create it with 'routeiq data import'")
    try:
        table = pq.read_table(path)
    except pa.ArrowInvalid as exc:
        raise schema.OutcomeTableError(f"{path} is not a parquet file: {exc}") from exc
    return schema.conform(table)


def first_prompts(table: pa.Table, per_split: dict[str, int]) -> pa.Table:
    """A small real slice: per split, every row of its first `per_split[split]` prompt ids (sorted)."""
    import pyarrow.compute as pc

    parts = []
    for split, count in per_split.items():
        part = table.filter(pc.equal(table[schema.SPLIT], split))
        ids = sorted(set(part[schema.PROMPT_ID].to_pylist()))[:count]
        parts.append(part.filter(pc.is_in(part[schema.PROMPT_ID], value_set=pa.array(ids, type=pa.string()))))
    return pa.concat_tables(parts)
