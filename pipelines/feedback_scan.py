"""How much feedback has arrived in the gateway's span files past given byte offsets, counted cheaply, and how far
the `ingest` stage has read each file (its warehouse bookmark). For the retraining watcher (`pipelines.watch`).

Reads span files and the warehouse only; never writes either. Only complete lines are counted, as `ingest` reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb

from pipelines.ingest import sql_text
from serving.telemetry import attributes as a
from serving.telemetry.files import span_files

CHUNK_BYTES: Final = 8 * 2**20
FEEDBACK_SPAN: Final = re.compile(rb'"name"\s*:\s*"' + re.escape(a.FEEDBACK_SPAN_NAME.encode()) + rb'"')
"""A feedback span's name in an OTLP-JSON line. Inside a string value (a captured prompt) the quotes are escaped,
so text that merely mentions the name does not match."""


@dataclass(frozen=True)
class FeedbackScan:
    """What one scan found: feedback spans in complete lines past the offsets, and the offsets to scan on from."""

    feedback: int
    offsets: dict[str, int]
    """Absolute path of every span file → bytes counted (a line boundary)."""
    files_read: int
    """Files that had new complete lines."""


def scan_feedback(traces: Path, offsets: Mapping[str, int]) -> FeedbackScan:
    """Count feedback spans in every span file of `traces` from its offset (0 for a new file; a file now shorter
    than its offset was replaced and is counted from the start, as `ingest` reads it again) to its last newline.
    A directory that does not exist yet holds nothing new."""
    if not traces.is_dir():
        return FeedbackScan(0, dict(offsets), 0)
    found, moved, read = 0, {}, 0
    for path in span_files(traces):
        key = str(path.resolve())
        start = offsets.get(key, 0)
        if path.stat().st_size < start:
            start = 0
        count, end = _count_from(path, start)
        found, moved[key], read = found + count, end, read + (end > start)
    return FeedbackScan(found, moved, read)


def _count_from(path: Path, start: int) -> tuple[int, int]:
    """Feedback spans in the complete lines of `path` after byte `start`, and the offset after the last of them."""
    count, end, carry = 0, start, b""
    with path.open("rb") as file:
        file.seek(start)
        while block := file.read(CHUNK_BYTES):
            buffer = carry + block
            cut = buffer.rfind(b"\n") + 1
            count += sum(1 for _ in FEEDBACK_SPAN.finditer(buffer, 0, cut))
            end, carry = end + cut, buffer[cut:]
    return count, end


def ingest_progress(warehouse: Path) -> dict[str, int]:
    """Absolute path of every span file the `ingest` stage has read → bytes read; empty before its first run.
    Raises `duckdb.Error` when the warehouse is held by a writer."""
    if not warehouse.is_file():
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        try:
            rows = con.execute(sql_text("ingest_files_read")).fetchall()
        except duckdb.CatalogException:  # a warehouse file from before the first ingest finished
            return {}
    return {str(path): int(offset) for path, offset, _ in rows}
