"""A span exporter that appends OTLP-JSON lines to size-rotated files, in the OTel Collector file format.

One `ExportTraceServiceRequest` per line, written whole; it never rewrites or deletes a file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from serving.telemetry.otlp_json import encode_request

_logger = logging.getLogger(__name__)

FILE_PREFIX = "spans"
FILE_SUFFIX = ".jsonl"


def span_file_name(started: datetime, pid: int, sequence: int) -> str:
    """`spans-<UTC start>-<pid>-<n>.jsonl`: names sort by start time, then by rotation order."""
    return f"{FILE_PREFIX}-{started:%Y%m%dT%H%M%S%fZ}-{pid}-{sequence:06d}{FILE_SUFFIX}"


def encode_line(spans: Sequence[ReadableSpan]) -> bytes | None:
    """One compact OTLP-JSON `ExportTraceServiceRequest` and a newline; None when there is nothing to write.

    `encode_request` gives the official encoder's bytes at a fraction of its cost; this runs in the export thread
    but holds the GIL, so every microsecond here is taken from request handling.
    """
    request = encode_request(spans)
    if not request:
        return None
    return orjson.dumps(request) + b"\n"


class RotatingFileSpanExporter(SpanExporter):
    """Writes each batch as one line of `directory/spans-*.jsonl`, starting a new file before one would pass
    `max_file_bytes` (a single line longer than that gets a file of its own).

    The first file is created at the first export, so an idle gateway writes no file (`Telemetry.start` creates
    the directory and checks it is writable). Failing writes are counted and logged once, not once each.
    """

    def __init__(self, directory: Path, max_file_bytes: int) -> None:
        if max_file_bytes <= 0:
            raise ValueError(f"max_file_bytes must be positive, got {max_file_bytes}.")
        self._directory = directory
        self._max_file_bytes = max_file_bytes
        self._started = datetime.now(UTC)
        self._pid = os.getpid()
        self._sequence = 0
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._closed = False
        self._failing = False
        self._lock = threading.Lock()

    @property
    def current_file(self) -> Path | None:
        """The file being appended to, if one is open."""
        with self._lock:
            return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            line = encode_line(spans)
        except Exception:
            _logger.exception("Could not encode %d spans as OTLP JSON.", len(spans))
            return SpanExportResult.FAILURE
        if line is None:
            return SpanExportResult.SUCCESS
        with self._lock:
            if self._closed:
                _logger.warning("Span file exporter is shut down; %d spans not written.", len(spans))
                return SpanExportResult.FAILURE
            try:
                self._write(line)
            except OSError as exc:
                self._failed(len(spans), exc)
                # A half-written line stays last in its file; the next line starts a new file.
                self._close_file()
                return SpanExportResult.FAILURE
            if self._failing:
                self._failing = False
                _logger.warning("Writing spans under %s again.", self._directory)
        return SpanExportResult.SUCCESS

    def _failed(self, count: int, exc: OSError) -> None:
        """One warning line when writes start failing, none for the next (no traceback); the processor counts them."""
        if not self._failing:
            self._failing = True
            _logger.warning(
                "Could not write %d spans under %s (%s); spans are counted as failed "
                '(routeiq_spans_total{destination="file",outcome="failed"}) and not logged until a write succeeds.',
                count,
                self._directory,
                exc,
            )

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._close_file()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # Every line is flushed to the OS as it is written.
        return True

    def _write(self, line: bytes) -> None:
        if self._file is None or (self._size > 0 and self._size + len(line) > self._max_file_bytes):
            self._open_next()
        assert self._file is not None
        self._file.write(line)
        self._file.flush()
        self._size += len(line)

    def _open_next(self) -> None:
        self._close_file()
        self._directory.mkdir(parents=True, exist_ok=True)
        while True:
            self._sequence += 1
            path = self._directory / span_file_name(self._started, self._pid, self._sequence)
            try:
                # Exclusive create: never append to a file another writer owns.
                self._file = path.open("xb")
            except FileExistsError:
                continue
            self._path = path
            self._size = 0
            return

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                _logger.exception("Could not close %s.", self._path)
        self._file = None
        self._path = None
