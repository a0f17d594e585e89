"""DVC stage `ingest`: the gateway's OTLP-JSON span files → DuckDB tables `requests` and `feedback`.

Incremental and idempotent: a file is read on from where the last run stopped and primary keys drop repeats.
A malformed line is stored and counted, never fatal; an unfinished last line is left for the next run.
Each chunk is parsed natively in one go (`pipelines.span_arrow`); the lines that path cannot vouch for are read
one by one by the telemetry reader, which is the reference for what every line means.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict

from pipelines import span_arrow
from pipelines.span_columns import feedback_table, malformed_table, request_table, split_wrong_types
from serving.telemetry import attributes as a
from serving.telemetry.files import MalformedLine, SpanRecord, read_line, span_files

SQL_DIR: Final = Path(__file__).parent / "sql"
PARAMS_FILE: Final = Path("params.yaml")
SECTION: Final = "loop"
STATS_FILE: Final = Path("data/loop/ingest.json")
CHUNK_BYTES: Final = 16 * 2**20
"""Read (and insert) this much of a file at a time, so memory stays bounded however large a file grows."""
EXAMPLES: Final = 10
"""Malformed lines quoted in the stats; all of them are in the `malformed_lines` table."""


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


@dataclass(frozen=True)
class _Batch:
    """One chunk of complete lines, read: its rows, its malformed lines (or spans) and what it held."""

    requests: pa.Table
    feedback: pa.Table
    malformed: list[MalformedLine]
    bytes: int
    lines: int
    spans: int
    other_spans: int


@dataclass(frozen=True)
class _Chunk:
    """Whole lines of a file, the first being line `first_line`."""

    data: bytes
    first_line: int
    lines: int


def ingest(traces: Path, warehouse: Path, *, exact: bool = False) -> IngestStats:
    """Read every span file in `traces` on from where the last run stopped into the `warehouse` database;
    `exact` reads every line with the per-line reader: slower, the same tables."""
    started = time.perf_counter()
    stats = IngestStats()
    files = span_files(traces)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql_text("ingest_settings"))
        con.execute(sql_text("ingest_schema"))
        done = {path: (offset, lines) for path, offset, lines in con.execute(sql_text("ingest_files_read")).fetchall()}
        for path in files:
            stats.files += 1
            _ingest_file(con, path, done.get(str(path.resolve()), (0, 0)), exact, stats)
    stats.seconds = time.perf_counter() - started
    return stats


def _ingest_file(
    con: duckdb.DuckDBPyConnection, path: Path, start: tuple[int, int], exact: bool, stats: IngestStats
) -> None:
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
        for batch in _read_ahead(_numbered(_complete_lines(file), lines + 1), path, exact):
            offset, lines = offset + batch.bytes, lines + batch.lines
            _store(con, batch, {"path": str(path.resolve()), "bytes_read": offset, "lines_read": lines}, stats)
        if file.tell() > offset:
            stats.incomplete += 1


def _read_ahead(chunks: Iterator[_Chunk], path: Path, exact: bool) -> Iterator[_Batch]:
    """The chunks read, in order; each is read in a worker thread while the one before is stored (the parser
    and DuckDB release the GIL), and no more than one ahead, so memory stays bounded."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read") as pool:
        ahead: Future[_Batch] | None = None
        for chunk in chunks:
            following = pool.submit(_read_chunk, chunk, path, exact)
            if ahead is not None:
                yield ahead.result()
            ahead = following
        if ahead is not None:
            yield ahead.result()


def _numbered(chunks: Iterator[bytes], first_line: int) -> Iterator[_Chunk]:
    """Each chunk with the number of its first line."""
    for data in chunks:
        chunk = _Chunk(data, first_line, data.count(b"\n"))
        yield chunk
        first_line += chunk.lines


def _complete_lines(file: BinaryIO) -> Iterator[bytes]:
    """Chunks of whole lines; an unfinished last line is never yielded."""
    carry = b""
    while block := file.read(CHUNK_BYTES):
        buffer = carry + block
        cut = buffer.rfind(b"\n") + 1
        carry = buffer[cut:]
        if cut:
            yield buffer[:cut]


def _read_chunk(chunk: _Chunk, path: Path, exact: bool) -> _Batch:
    """The native path's rows plus those of the lines it handed back, read one by one; `exact`: every line is
    read one by one (the reference the native path is tested against)."""
    fast = _vouched(chunk, path, exact)
    records, malformed = _read_lines(fast.exact_lines, path)
    requests = [r for r in records if r.name == a.CHAT_SPAN_NAME]
    feedback = [r for r in records if r.name == a.FEEDBACK_SPAN_NAME]
    exact_requests, bad_requests = split_wrong_types(requests, request_table)
    exact_feedback, bad_feedback = split_wrong_types(feedback, feedback_table)
    return _Batch(
        requests=_in_file_order(fast.requests, exact_requests),
        feedback=_in_file_order(fast.feedback, exact_feedback),
        malformed=[*malformed, *bad_requests, *bad_feedback],
        bytes=len(chunk.data),
        lines=chunk.lines,
        spans=fast.spans + len(records),
        other_spans=fast.other_spans + len(records) - len(requests) - len(feedback),
    )


def _vouched(chunk: _Chunk, path: Path, exact: bool) -> span_arrow.ArrowRead:
    if not exact:
        return span_arrow.read_chunk(chunk.data, path, chunk.first_line)
    raws = chunk.data.split(b"\n")[:-1]
    lines = [(number, raw) for number, raw in enumerate(raws, start=chunk.first_line) if raw and not raw.isspace()]
    return span_arrow.ArrowRead(request_table([]), feedback_table([]), 0, 0, lines)


def _read_lines(lines: Sequence[tuple[int, bytes]], path: Path) -> tuple[list[SpanRecord], list[MalformedLine]]:
    records: list[SpanRecord] = []
    malformed: list[MalformedLine] = []
    for number, raw in lines:
        for item in read_line(raw, path, number):
            if isinstance(item, SpanRecord):
                records.append(item)
            else:
                malformed.append(item)
    return records, malformed


def _in_file_order(fast: pa.Table, exact: pa.Table) -> pa.Table:
    """Both paths' rows in the order the per-line reader alone lists them: by line, as each line is read by
    one path in order (a stable sort), so the same copy of a span repeated within a chunk is the one kept."""
    if not exact.num_rows:
        return fast
    if not fast.num_rows:
        return exact
    rows = pa.concat_tables([fast, exact])
    return rows.take(pc.sort_indices(rows, sort_keys=[("line", "ascending")]))


def _store(con: duckdb.DuckDBPyConnection, batch: _Batch, progress: dict[str, Any], stats: IngestStats) -> None:
    """Insert one chunk's spans and malformed lines and move the file's bookmark, in one transaction: a crash
    in between leaves neither, so the next run reads the chunk again."""
    con.begin()
    try:
        added_requests = _insert(con, "request_batch", batch.requests, "ingest_insert_requests")
        added_feedback = _insert(con, "feedback_batch", batch.feedback, "ingest_insert_feedback")
        _insert(con, "malformed_batch", malformed_table(batch.malformed), "ingest_insert_malformed")
        con.execute(sql_text("ingest_file_progress"), progress)
    except BaseException:
        con.rollback()
        raise
    con.commit()
    stats.lines += batch.lines
    stats.spans += batch.spans
    stats.requests += added_requests
    stats.feedback += added_feedback
    stats.duplicates += batch.requests.num_rows + batch.feedback.num_rows - added_requests - added_feedback
    stats.other_spans += batch.other_spans
    stats.malformed += len(batch.malformed)
    room = EXAMPLES - len(stats.malformed_examples)
    stats.malformed_examples += [f"{m.file}:{m.line}: {m.reason}" for m in batch.malformed[: max(room, 0)]]


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, statement: str) -> int:
    if not table.num_rows:
        return 0
    con.register(name, table)
    try:
        row = con.execute(sql_text(statement)).fetchone()
    finally:
        con.unregister(name)
    return int(row[0]) if row else 0


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
