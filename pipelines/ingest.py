"""DVC stage `ingest`: the gateway's OTLP-JSON span files → DuckDB tables `requests` and `feedback`.

Incremental and idempotent: a file is read on from where the last run stopped and primary keys drop repeats.
A malformed line is stored and counted, never fatal; an unfinished last line is left for the next run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict

from serving.telemetry import attributes as a

# Decoding a line is the telemetry reader's job; it exposes it per directory only, and we read from offsets.
from serving.telemetry.files import MalformedLine, SpanRecord, span_files
from serving.telemetry.files import _read_line as read_line

SQL_DIR: Final = Path(__file__).parent / "sql"
PARAMS_FILE: Final = Path("params.yaml")
SECTION: Final = "loop"
STATS_FILE: Final = Path("data/loop/ingest.json")
CHUNK_BYTES: Final = 16 * 2**20
"""Read (and insert) this much of a file at a time, so memory stays bounded however large a file grows."""
EXAMPLES: Final = 10
"""Malformed lines quoted in the stats; all of them are in the `malformed_lines` table."""

_TIMESTAMP = pa.timestamp("us", tz="UTC")
REQUEST_ATTRIBUTES: Final = MappingProxyType(
    {
        "response_id": (a.RESPONSE_ID, pa.string()),
        "latency_ms": (a.LATENCY_MS, pa.float64()),
        "request_model": (a.REQUEST_MODEL, pa.string()),
        "chosen_model": (a.CHOSEN_MODEL, pa.string()),
        "decision": (a.DECISION, pa.string()),
        "propensity": (a.PROPENSITY, pa.float64()),
        "cost_weight": (a.COST_WEIGHT, pa.float64()),
        "cost_usd": (a.COST_USD, pa.float64()),
        "cost_source": (a.COST_SOURCE, pa.string()),
        "input_tokens": (a.INPUT_TOKENS, pa.int64()),
        "output_tokens": (a.OUTPUT_TOKENS, pa.int64()),
        "prompt_hash": (a.PROMPT_HASH, pa.string()),
        "prompt_text": (a.PROMPT_TEXT, pa.string()),
        "router_version": (a.ROUTER_VERSION, pa.string()),
        "router_family": (a.ROUTER_FAMILY, pa.string()),
        "arm": (a.ROUTER_ARM, pa.string()),
        "status": (a.HTTP_STATUS, pa.int32()),
        "error_type": (a.ERROR_TYPE, pa.string()),
        "stream": (a.STREAM, pa.bool_()),
        "candidates": (a.CANDIDATES, pa.list_(pa.string())),
        "predicted_quality": (a.PREDICTED_QUALITY, pa.list_(pa.float64())),
        "predicted_cost": (a.PREDICTED_COST, pa.list_(pa.float64())),
    }
)
"""`requests` column → (span attribute, arrow type); the span's ids, times, file and line come on top."""
FEEDBACK_ATTRIBUTES: Final = MappingProxyType(
    {
        "response_id": (a.FEEDBACK_RESPONSE_ID, pa.string()),
        "score": (a.FEEDBACK_SCORE, pa.float64()),
        "source": (a.FEEDBACK_SOURCE, pa.string()),
        "known": (a.FEEDBACK_KNOWN, pa.bool_()),
    }
)
"""`feedback` column → (span attribute, arrow type); ids, time, link, file and line come on top."""
Builder = Callable[[Sequence[SpanRecord]], pa.Table]
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError)

MALFORMED_SCHEMA: Final = pa.schema([("file", pa.string()), ("line", pa.int64()), ("reason", pa.string())])


class IngestParams(BaseModel):
    """The `loop` section keys this stage reads (the section is shared by the loop's stages)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    traces: Path = Path("runs/traces")
    """The gateway's span files (`routeiq_settings.telemetry.directory`)."""
    warehouse: Path = Path("data/loop/warehouse.duckdb")


@dataclass
class IngestStats:
    """What one run read and stored; `dvc metrics` shows it from `data/loop/ingest.json`."""

    files: int = 0
    files_read: int = 0
    """Files with new bytes since the last run."""
    lines: int = 0
    """Complete lines read this run (blank and malformed ones included)."""
    spans: int = 0
    requests: int = 0
    feedback: int = 0
    duplicates: int = 0
    """Spans already in the warehouse (or twice in what was read), skipped."""
    other_spans: int = 0
    """Spans that are neither requests nor feedback (e.g. embeddings), not stored."""
    malformed: int = 0
    incomplete: int = 0
    """Files whose last line had no newline yet: left for the next run."""
    seconds: float = 0.0
    malformed_examples: list[str] = field(default_factory=list)

    @property
    def spans_per_second(self) -> float:
        return self.spans / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"ingest: {self.files_read}/{self.files} files, {self.lines} new lines, {self.spans} spans "
            f"({self.spans_per_second:,.0f}/s) → {self.requests} requests, {self.feedback} feedback added; "
            f"{self.duplicates} duplicates, {self.other_spans} other spans, {self.malformed} malformed, "
            f"{self.incomplete} unfinished last lines"
        )


@dataclass
class _Batch:
    """Complete lines of one file chunk, read."""

    records: list[SpanRecord]
    malformed: list[MalformedLine]
    lines: int


def ingest(traces: Path, warehouse: Path) -> IngestStats:
    """Read every span file in `traces` on from where the last run stopped into the `warehouse` database."""
    started = time.perf_counter()
    stats = IngestStats()
    files = span_files(traces)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql_text("ingest_schema"))
        done = {path: (offset, lines) for path, offset, lines in con.execute(sql_text("ingest_files_read")).fetchall()}
        for path in files:
            stats.files += 1
            _ingest_file(con, path, done.get(str(path.resolve()), (0, 0)), stats)
    stats.seconds = time.perf_counter() - started
    return stats


def _ingest_file(con: duckdb.DuckDBPyConnection, path: Path, start: tuple[int, int], stats: IngestStats) -> None:
    """Read `path` on from byte `start[0]` (line `start[1]` + 1) to its last complete line."""
    offset, lines = start
    size = path.stat().st_size
    if size < offset:  # replaced by a shorter file: read it again; primary keys drop what was stored
        offset, lines = 0, 0
    if size == offset:
        return
    stats.files_read += 1
    with path.open("rb") as file:
        file.seek(offset)
        for chunk in _complete_lines(file):
            batch = _read_chunk(chunk, path, lines + 1)
            offset, lines = offset + len(chunk), lines + batch.lines
            _store(con, batch, {"path": str(path.resolve()), "bytes_read": offset, "lines_read": lines}, stats)
        if file.tell() > offset:
            stats.incomplete += 1


def _complete_lines(file: BinaryIO) -> Iterator[bytes]:
    """Chunks of whole lines; an unfinished last line is never yielded."""
    carry = b""
    while block := file.read(CHUNK_BYTES):
        buffer = carry + block
        cut = buffer.rfind(b"\n") + 1
        carry = buffer[cut:]
        if cut:
            yield buffer[:cut]


def _read_chunk(chunk: bytes, path: Path, first_line: int) -> _Batch:
    raws = chunk.split(b"\n")
    raws.pop()  # what follows the last newline: nothing
    batch = _Batch([], [], len(raws))
    for number, raw in enumerate(raws, start=first_line):
        if raw and not raw.isspace():
            for item in read_line(raw, path, number):
                if isinstance(item, SpanRecord):
                    batch.records.append(item)
                else:
                    batch.malformed.append(item)
    return batch


def _store(con: duckdb.DuckDBPyConnection, batch: _Batch, progress: dict[str, Any], stats: IngestStats) -> None:
    """Insert one chunk's spans and malformed lines and move the file's bookmark, in one transaction: a crash
    in between leaves neither, so the next run reads the chunk again."""
    requests = [r for r in batch.records if r.name == a.CHAT_SPAN_NAME]
    feedback = [r for r in batch.records if r.name == a.FEEDBACK_SPAN_NAME]
    requests_found, bad_requests = _table(requests, request_table)
    feedback_found, bad_feedback = _table(feedback, feedback_table)
    malformed = [*batch.malformed, *bad_requests, *bad_feedback]
    con.begin()
    try:
        added_requests = _insert(con, "request_batch", requests_found, "ingest_insert_requests")
        added_feedback = _insert(con, "feedback_batch", feedback_found, "ingest_insert_feedback")
        _insert(con, "malformed_batch", _malformed_table(malformed), "ingest_insert_malformed")
        con.execute(sql_text("ingest_file_progress"), progress)
    except BaseException:
        con.rollback()
        raise
    con.commit()
    stats.lines += batch.lines
    stats.spans += len(batch.records)
    stats.requests += added_requests
    stats.feedback += added_feedback
    stats.duplicates += requests_found.num_rows + feedback_found.num_rows - added_requests - added_feedback
    stats.other_spans += len(batch.records) - len(requests) - len(feedback)
    stats.malformed += len(malformed)
    room = EXAMPLES - len(stats.malformed_examples)
    stats.malformed_examples += [f"{m.file}:{m.line}: {m.reason}" for m in malformed[: max(room, 0)]]


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, statement: str) -> int:
    if not table.num_rows:
        return 0
    con.register(name, table)
    try:
        row = con.execute(sql_text(statement)).fetchone()
    finally:
        con.unregister(name)
    return int(row[0]) if row else 0


def _table(spans: Sequence[SpanRecord], build: Builder) -> tuple[pa.Table, list[MalformedLine]]:
    """The spans as one arrow table; a span with an attribute of the wrong type is set apart as malformed."""
    try:
        return build(spans), []
    except _ARROW_ERRORS:
        pass  # rare: find the culprits one by one, so the rest of the batch is still stored
    good: list[SpanRecord] = []
    bad: list[MalformedLine] = []
    for span in spans:
        try:
            build([span])
            good.append(span)
        except _ARROW_ERRORS as error:
            bad.append(
                MalformedLine(span.file, span.line, f"span {span.name!r}: an attribute has the wrong type: {error}")
            )
    return build(good), bad


def request_table(spans: Sequence[SpanRecord]) -> pa.Table:
    """Rows of the `requests` table."""
    columns = _span_columns(spans)
    columns["started_at"] = _micros([s.start_unix_nano for s in spans])
    columns["ended_at"] = _micros([s.end_unix_nano for s in spans])
    return pa.table(columns | _attribute_columns(spans, REQUEST_ATTRIBUTES))


def feedback_table(spans: Sequence[SpanRecord]) -> pa.Table:
    """Rows of the `feedback` table."""
    columns = _span_columns(spans)
    columns["scored_at"] = _micros([s.start_unix_nano for s in spans])
    columns["request_span_id"] = pa.array([s.links[0][1] if s.links else None for s in spans], pa.string())
    return pa.table(columns | _attribute_columns(spans, FEEDBACK_ATTRIBUTES))


def _span_columns(spans: Sequence[SpanRecord]) -> dict[str, pa.Array]:
    return {
        "span_id": pa.array([s.span_id for s in spans], pa.string()),
        "trace_id": pa.array([s.trace_id for s in spans], pa.string()),
        "file": pa.array([str(s.file) for s in spans], pa.string()),
        "line": pa.array([s.line for s in spans], pa.int64()),
    }


def _attribute_columns(
    spans: Sequence[SpanRecord], columns: Mapping[str, tuple[str, pa.DataType]]
) -> dict[str, pa.Array]:
    keys = [key for key, _ in columns.values()]
    # Row by row, then transposed: each span's dict is visited once, twice as fast as column by column.
    rows = [tuple(map(s.attributes.get, keys)) for s in spans]
    values = list(zip(*rows, strict=True)) if rows else [()] * len(keys)
    return {name: pa.array(column, kind) for (name, (_, kind)), column in zip(columns.items(), values, strict=True)}


def _micros(unix_nanos: list[int]) -> pa.Array:
    return pc.divide(pa.array(unix_nanos, pa.int64()), 1000).cast(_TIMESTAMP)


def _malformed_table(malformed: Sequence[MalformedLine]) -> pa.Table:
    rows = {"file": [str(m.file) for m in malformed], "line": [m.line for m in malformed]}
    return pa.table({**rows, "reason": [m.reason for m in malformed]}, schema=MALFORMED_SCHEMA)


def sql_text(name: str) -> str:
    """The statement in `pipelines/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


def loop_section(params_file: Path = PARAMS_FILE) -> dict[str, Any]:
    """The `loop` section of params.yaml; empty when the file or the section is absent (defaults apply)."""
    if not params_file.is_file():
        return {}
    section = (yaml.safe_load(params_file.read_text()) or {}).get(SECTION) or {}
    if not isinstance(section, dict):
        raise ValueError(f"{params_file}: section {SECTION!r} must be a mapping, got {section!r}")
    return section


def main() -> None:
    params = IngestParams.model_validate(loop_section())
    stats = ingest(params.traces, params.warehouse)
    STATS_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATS_FILE.write_text(json.dumps(asdict(stats), indent=2) + "\n")
    print(f"{stats.summary()} → {params.warehouse}")  # noqa: T201


if __name__ == "__main__":
    main()
