"""The gateway's own TracerProvider: a tracer, its exporters (OTLP-JSON files, optional OTLP/HTTP) and counters.

It never sets the global tracer provider; the app keeps one `Telemetry` and starts and stops it in its lifespan.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NoOpTracer, Tracer
from opentelemetry.util.types import AttributeValue

from serving.security.scrub import Scrubber
from serving.telemetry.directory import check_writable
from serving.telemetry.file_exporter import RotatingFileSpanExporter
from serving.telemetry.processor import BoundedSpanProcessor
from serving.telemetry.scrubbing import CleaningSpanExporter, SpanCleaner, set_time_limit
from serving.telemetry.settings import TelemetrySettings

TRACER_NAME = "routeiq.gateway"
OTLP_TRACES_PATH = "/v1/traces"
FILE_DESTINATION = "file"
OTLP_DESTINATION = "otlp"
SHUTDOWN_TIMEOUT_MILLIS = 5000


@dataclass(frozen=True)
class ExportCounts:
    """Span counts of one destination; `dropped` is what the gateway exposes as lost spans."""

    queued: int
    dropped: int
    exported: int
    failed: int


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: `endpoint` as given, or with `/v1/traces` when it has no path."""
    if urlsplit(endpoint).path.strip("/"):
        return endpoint
    return endpoint.rstrip("/") + OTLP_TRACES_PATH


class Telemetry:
    """Spans of one gateway: `start()` builds the provider and export threads, `shutdown()` flushes them.

    Each destination (the files, the collector) has its own bounded queue and thread, so a slow or absent
    collector never delays the files the pipelines read. Counters are summed over destinations. Every span is
    scrubbed with `scrubber` (the gateway's: its configured keys, and every secret recognisable by shape) and
    clipped to `settings.max_attribute_chars` before any destination sees it.
    """

    def __init__(
        self,
        settings: TelemetrySettings,
        resource_attributes: Mapping[str, AttributeValue] | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.settings = settings
        self._cleaner = SpanCleaner(scrubber or Scrubber(), settings.max_attribute_chars)
        self._resource_attributes = dict(resource_attributes or {})
        self._provider: TracerProvider | None = None
        self._processors: dict[str, BoundedSpanProcessor] = {}
        self._tracer: Tracer | None = None

    @property
    def capture_prompts(self) -> bool:
        """Whether spans may carry the prompt text."""
        return self.settings.capture_prompts

    @property
    def tracer(self) -> Tracer:
        """The gateway's tracer; a no-op tracer when telemetry is disabled."""
        if self._tracer is None:
            raise RuntimeError("Telemetry.tracer is used before Telemetry.start(); start it in the app lifespan.")
        return self._tracer

    def start(self) -> None:
        """Check the span directory is writable, then build the provider, the exporters and their export threads.

        An unwritable directory is a `GatewayConfigError` and nothing is started; a second call is an error.
        """
        if self._tracer is not None:
            raise RuntimeError("Telemetry.start() was called twice.")
        if not self.settings.enabled:
            self._tracer = NoOpTracer()
            return
        check_writable(self.settings.directory)
        resource = Resource.create({**self._resource_attributes, SERVICE_NAME: self.settings.service_name})
        # Every span is training data: sample all of them whatever OTEL_TRACES_SAMPLER says.
        # A value is bounded when it is set (a 3 MB string never waits in a queue), with a margin for the cleaner.
        limits = SpanLimits(max_attribute_length=set_time_limit(self.settings.max_attribute_chars))
        provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, shutdown_on_exit=False, span_limits=limits)
        for name, exporter in self._exporters().items():
            processor = BoundedSpanProcessor(
                [CleaningSpanExporter(exporter, self._cleaner)],
                max_queue_size=self.settings.max_queue_size,
                max_export_batch_size=self.settings.max_export_batch_size,
                export_interval_seconds=self.settings.export_interval_seconds,
                name=name,
            )
            provider.add_span_processor(processor)
            self._processors[name] = processor
        self._provider = provider
        self._tracer = provider.get_tracer(TRACER_NAME)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every span ended so far; False if `timeout_millis` passed first."""
        return self._provider.force_flush(timeout_millis) if self._provider is not None else True

    def shutdown(self, timeout_millis: int = SHUTDOWN_TIMEOUT_MILLIS) -> None:
        """Export what is queued, stop the threads and close the files; later spans are counted as dropped.

        The files are drained first. Whatever a destination has not exported by `timeout_millis` (a collector
        that is down) is given up and counted in `failed`, so a missing collector cannot hold up a shutdown.
        """
        deadline = time.monotonic() + timeout_millis / 1000
        for processor in self._processors.values():
            processor.shutdown(max(int((deadline - time.monotonic()) * 1000), 0))
        if self._provider is not None:
            self._provider.shutdown()

    def counts(self) -> dict[str, ExportCounts]:
        """Counts per destination (`file`, and `otlp` when a collector is configured)."""
        return {name: ExportCounts(p.queued, p.dropped, p.exported, p.failed) for name, p in self._processors.items()}

    @property
    def queued(self) -> int:
        return sum(p.queued for p in self._processors.values())

    @property
    def dropped(self) -> int:
        return sum(p.dropped for p in self._processors.values())

    @property
    def exported(self) -> int:
        return sum(p.exported for p in self._processors.values())

    @property
    def failed(self) -> int:
        return sum(p.failed for p in self._processors.values())

    def _exporters(self) -> dict[str, SpanExporter]:
        exporters: dict[str, SpanExporter] = {
            FILE_DESTINATION: RotatingFileSpanExporter(self.settings.directory, self.settings.max_file_bytes)
        }
        if self.settings.otlp_endpoint is not None:
            exporters[OTLP_DESTINATION] = OTLPSpanExporter(endpoint=otlp_traces_url(self.settings.otlp_endpoint))
        return exporters
