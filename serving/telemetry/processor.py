"""A span processor with a bounded queue and one export thread, which counts every span it cannot deliver.

It never blocks a request on export: when the queue is full the span is dropped and counted in `dropped`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5.0
"""After the shutdown deadline the exporters are shut down; this long is left for the thread to count the rest."""


class BoundedSpanProcessor(SpanProcessor):
    """Queues ended spans (up to `max_queue_size`) and exports them in batches from one daemon thread.

    Every span handed to `on_end` ends up in exactly one counter: `dropped` (queue full or processor shut
    down), `exported` (every exporter succeeded), `failed` (an exporter failed or raised) — or is still
    `pending`. So `queued == exported + failed + pending` and spans received `== queued + dropped`.
    """

    def __init__(
        self,
        exporters: Sequence[SpanExporter],
        *,
        max_queue_size: int = 65536,
        max_export_batch_size: int = 512,
        export_interval_seconds: float = 0.5,
        name: str = "spans",
    ) -> None:
        if not exporters:
            raise ValueError("BoundedSpanProcessor needs at least one exporter.")
        if max_queue_size <= 0 or max_export_batch_size <= 0 or export_interval_seconds <= 0:
            raise ValueError("max_queue_size, max_export_batch_size and export_interval_seconds must be positive.")
        self._exporters = tuple(exporters)
        self._max_queue_size = max_queue_size
        self._batch_size = max_export_batch_size
        self._interval = export_interval_seconds
        self._queue: deque[ReadableSpan] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._flush_requested = False
        self._stopping = False
        self._queued = self._dropped = self._exported = self._failed = 0
        self._raising = False  # whether the last export raised; only the export thread touches it
        self._thread = threading.Thread(target=self._run, name=f"routeiq-export-{name}", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Spans accepted into the queue, ever."""
        with self._lock:
            return self._queued

    @property
    def dropped(self) -> int:
        """Spans refused because the queue was full or the processor was shut down."""
        with self._lock:
            return self._dropped

    @property
    def exported(self) -> int:
        """Spans every exporter accepted."""
        with self._lock:
            return self._exported

    @property
    def failed(self) -> int:
        """Spans in a batch that an exporter refused or raised on."""
        with self._lock:
            return self._failed

    @property
    def pending(self) -> int:
        """Spans queued or being exported right now."""
        with self._lock:
            return self._queued - self._exported - self._failed

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        with self._lock:
            if self._stopping or len(self._queue) >= self._max_queue_size:
                self._dropped += 1
                return
            self._queue.append(span)
            self._queued += 1
            if len(self._queue) >= self._batch_size:
                self._wake.notify()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every span queued before this call; False if `timeout_millis` passed first."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            target = self._queued
            self._flush_requested = True
            self._wake.notify()
            return self._done.wait_for(
                lambda: self._exported + self._failed >= target, timeout=max(deadline - time.monotonic(), 0.0)
            )

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Export everything queued, stop the thread and shut the exporters down.

        Past `timeout_millis` the exporters are shut down anyway; what they then refuse is counted in `failed`.
        """
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout_millis / 1000)
        if self._thread.is_alive():
            _logger.warning("Span export did not finish within %d ms; shutting the exporters down.", timeout_millis)
        for exporter in self._exporters:
            _shutdown_quietly(exporter)
        self._thread.join(SHUTDOWN_GRACE_SECONDS)

    def _run(self) -> None:
        # Exporting must not create spans of its own (e.g. an instrumented HTTP client).
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            while self._export_next_batch():
                pass
        finally:
            detach(token)

    def _export_next_batch(self) -> bool:
        """Wait for a reason to export, then export one batch; False once stopping and drained."""
        with self._lock:
            self._wake.wait_for(self._should_export, timeout=self._interval)
            if not self._queue:
                self._flush_requested = False
                return not self._stopping
            batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
        # Every exporter gets the batch even after one has failed, hence a list and not a generator.
        ok = all([self._export_to(exporter, batch) for exporter in self._exporters])
        with self._lock:
            if ok:
                self._exported += len(batch)
            else:
                self._failed += len(batch)
            self._done.notify_all()
            if self._queue:
                # A timer tick or flush drains everything queued, not just one batch.
                self._flush_requested = True
        return True

    def _should_export(self) -> bool:
        return self._stopping or self._flush_requested or len(self._queue) >= self._batch_size

    def _export_to(self, exporter: SpanExporter, batch: list[ReadableSpan]) -> bool:
        """Export one batch; a failure is counted by the caller, and logged only when exports start failing
        (an exporter that returns a failure has said why itself), so a full disk is not a log line per batch."""
        try:
            result = exporter.export(batch)
        except Exception:
            if not self._raising:
                _logger.exception(
                    "%s raised while exporting %d spans; later failures are counted, not logged, until one succeeds.",
                    type(exporter).__name__,
                    len(batch),
                )
            self._raising = True
            return False
        self._raising = False
        if result is not SpanExportResult.SUCCESS:
            _logger.debug("%s failed to export %d spans.", type(exporter).__name__, len(batch))
            return False
        return True


def _shutdown_quietly(exporter: SpanExporter) -> None:
    try:
        exporter.shutdown()
    except Exception:
        _logger.exception("%s raised while shutting down.", type(exporter).__name__)
