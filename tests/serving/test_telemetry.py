"""Telemetry with real OTel components: files written and read back, rotation, counted drops, OTLP/HTTP export."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, StatusCode
from pydantic import ValidationError

from serving.telemetry import attributes as attr
from serving.telemetry.file_exporter import RotatingFileSpanExporter
from serving.telemetry.files import SpanRecord, decode_value, read_spans, scan_spans
from serving.telemetry.processor import BoundedSpanProcessor
from serving.telemetry.settings import TelemetrySettings
from serving.telemetry.tracing import Telemetry, otlp_traces_url

FAST = 0.05

CHAT_ATTRIBUTES: dict[str, Any] = {
    attr.OPERATION_NAME: "chat",
    attr.REQUEST_MODEL: "auto",
    attr.INPUT_TOKENS: 12,
    attr.OUTPUT_TOKENS: 2**40,
    attr.COST_USD: 0.00125,
    attr.STREAM: False,
    attr.CANDIDATES: ["gpt-4o", "llama-3-8b"],
    attr.PREDICTED_QUALITY: [0.8, 0.55],
    attr.FINISH_REASONS: ["stop"],
    attr.PROPENSITY: 1.0,
    attr.DECISION: attr.DECISION_ROUTER,
}


class RecordingExporter(SpanExporter):
    """Keeps the names of the spans it exports; sleeps `delay` per batch, or waits for `gate` when given."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.delay = delay
        self.gate = gate
        self.started = threading.Event()
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.delay)
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


class FailingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise OSError("disk on fire")


def _settings(tmp_path: Path, **overrides: Any) -> TelemetrySettings:
    return TelemetrySettings(**{"directory": tmp_path / "traces", "export_interval_seconds": FAST, **overrides})


def _provider(processor: BoundedSpanProcessor) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({}), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


def _end_spans(provider: TracerProvider, count: int, first: int = 0) -> None:
    tracer = provider.get_tracer("test")
    for i in range(first, first + count):
        tracer.start_span(f"span-{i}").end()


def test_attributes_of_every_type_are_written_and_read_back_equal(tmp_path: Path) -> None:
    telemetry = Telemetry(_settings(tmp_path), resource_attributes={"deployment.environment": "test"})
    telemetry.start()
    tracer = telemetry.tracer
    with (
        tracer.start_as_current_span(attr.CHAT_SPAN_NAME, attributes=CHAT_ATTRIBUTES) as chat,
        tracer.start_as_current_span("provider.call") as child,
    ):
        child.set_status(StatusCode.ERROR, "upstream said no")
    feedback = telemetry.tracer.start_span(attr.FEEDBACK_SPAN_NAME, links=[Link(chat.get_span_context())])
    feedback.set_attribute(attr.FEEDBACK_SCORE, 0.75)
    feedback.end()
    telemetry.shutdown()

    records = {r.name: r for r in read_spans(tmp_path / "traces")}
    assert set(records) == {attr.CHAT_SPAN_NAME, "provider.call", attr.FEEDBACK_SPAN_NAME}
    chat_record, child_record = records[attr.CHAT_SPAN_NAME], records["provider.call"]
    context = chat.get_span_context()
    assert chat_record.attributes == CHAT_ATTRIBUTES
    assert chat_record.trace_id == f"{context.trace_id:032x}"
    assert chat_record.span_id == f"{context.span_id:016x}"
    assert chat_record.parent_span_id is None
    assert chat_record.end_unix_nano >= chat_record.start_unix_nano > 0
    assert chat_record.resource["service.name"] == "routeiq-gateway"
    assert chat_record.resource["deployment.environment"] == "test"
    assert child_record.parent_span_id == chat_record.span_id
    assert (child_record.status_code, child_record.status_message) == (2, "upstream said no")
    assert records[attr.FEEDBACK_SPAN_NAME].links == ((chat_record.trace_id, chat_record.span_id),)
    assert (telemetry.exported, telemetry.dropped, telemetry.failed) == (3, 0, 0)


def test_the_file_format_is_otlp_json_one_request_per_line(tmp_path: Path) -> None:
    telemetry = Telemetry(_settings(tmp_path))
    telemetry.start()
    telemetry.tracer.start_span(attr.CHAT_SPAN_NAME, attributes={attr.INPUT_TOKENS: 12, attr.STREAM: True}).end()
    telemetry.shutdown()

    (path,) = (tmp_path / "traces").iterdir()
    assert path.name.startswith("spans-") and path.suffix == ".jsonl"
    (line,) = path.read_bytes().splitlines()
    (resource_spans,) = orjson.loads(line)["resourceSpans"]
    (span,) = resource_spans["scopeSpans"][0]["spans"]
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
    assert {"key": attr.INPUT_TOKENS, "value": {"intValue": "12"}} in span["attributes"]
    assert {"key": attr.STREAM, "value": {"boolValue": True}} in span["attributes"]


def test_files_rotate_at_max_file_bytes_and_no_span_is_lost(tmp_path: Path) -> None:
    directory = tmp_path / "traces"
    exporter = RotatingFileSpanExporter(directory, max_file_bytes=2500)
    processor = BoundedSpanProcessor([exporter], max_export_batch_size=1, export_interval_seconds=FAST)
    provider = _provider(processor)
    _end_spans(provider, 40)
    provider.shutdown()

    files = sorted(directory.iterdir())
    assert len(files) > 3
    line_sizes = [len(line) for path in files for line in path.read_bytes().splitlines(keepends=True)]
    assert max(line_sizes) < 2500
    assert all(path.stat().st_size <= 2500 for path in files)
    # Each file was full: the next line would not have fitted.
    for path, following in itertools.pairwise(files):
        next_line = following.read_bytes().splitlines(keepends=True)[0]
        assert path.stat().st_size + len(next_line) > 2500
    assert [r.name for r in read_spans(directory)] == [f"span-{i}" for i in range(40)]
    assert (processor.exported, processor.dropped, processor.failed) == (40, 0, 0)


def test_a_full_queue_drops_spans_and_counts_each_one(tmp_path: Path) -> None:
    gate = threading.Event()
    exporter = RecordingExporter(gate=gate)
    processor = BoundedSpanProcessor(
        [exporter], max_queue_size=2, max_export_batch_size=1, export_interval_seconds=FAST
    )
    provider = _provider(processor)
    _end_spans(provider, 1)
    assert exporter.started.wait(5)  # span-0 is being exported, the queue is empty
    _end_spans(provider, 6, first=1)  # span-1 and span-2 fit, four are dropped
    assert (processor.queued, processor.dropped, processor.pending) == (3, 4, 3)
    gate.set()
    provider.shutdown()

    assert (processor.exported, processor.dropped, processor.failed, processor.pending) == (3, 4, 0, 0)
    assert exporter.names == ["span-0", "span-1", "span-2"]


def test_a_slow_exporter_loses_no_span_without_counting_it() -> None:
    exporter = RecordingExporter(delay=0.02)
    processor = BoundedSpanProcessor(
        [exporter], max_queue_size=2, max_export_batch_size=2, export_interval_seconds=FAST
    )
    provider = _provider(processor)
    _end_spans(provider, 300)
    provider.shutdown()

    assert processor.dropped > 0
    assert processor.queued + processor.dropped == 300
    assert processor.exported == processor.queued == len(exporter.names)
    assert processor.failed == 0


def test_failures_are_counted_and_every_exporter_still_gets_the_batch() -> None:
    recording = RecordingExporter()
    processor = BoundedSpanProcessor([FailingExporter(), recording], export_interval_seconds=FAST)
    provider = _provider(processor)
    _end_spans(provider, 5)
    provider.shutdown()
    assert (processor.exported, processor.failed, len(recording.names)) == (0, 5, 5)


def test_shutdown_flushes_what_is_queued_and_counts_later_spans_as_dropped(tmp_path: Path) -> None:
    telemetry = Telemetry(_settings(tmp_path, export_interval_seconds=60.0))
    telemetry.start()
    for _ in range(10):
        telemetry.tracer.start_span(attr.CHAT_SPAN_NAME).end()
    assert telemetry.exported == 0  # nothing is due before the 60 s tick
    telemetry.shutdown()
    telemetry.tracer.start_span(attr.CHAT_SPAN_NAME).end()

    assert len(list(read_spans(tmp_path / "traces"))) == 10
    assert (telemetry.queued, telemetry.exported, telemetry.dropped) == (10, 10, 1)


def test_force_flush_exports_everything_ended_so_far(tmp_path: Path) -> None:
    telemetry = Telemetry(_settings(tmp_path, export_interval_seconds=60.0))
    telemetry.start()
    for _ in range(3):
        telemetry.tracer.start_span(attr.EMBEDDINGS_SPAN_NAME).end()
    assert telemetry.force_flush(5000)
    assert len(list(read_spans(tmp_path / "traces"))) == 3
    telemetry.shutdown()


def test_malformed_lines_are_counted_and_reported_and_the_rest_is_read(tmp_path: Path) -> None:
    telemetry = Telemetry(_settings(tmp_path))
    telemetry.start()
    telemetry.tracer.start_span(attr.CHAT_SPAN_NAME).end()
    telemetry.shutdown()
    directory = tmp_path / "traces"
    (good,) = directory.iterdir()
    good_line = good.read_bytes()
    bad_id = good_line.replace(b'"traceId":"', b'"traceId":"zz', 1)
    (directory / "collector.json").write_bytes(good_line + b"{not json\n" + bad_id + good_line + good_line[:40])

    scan = scan_spans(directory)
    assert [(r.file.name, r.line) for r in scan.records] == [
        ("collector.json", 1),
        ("collector.json", 4),
        (good.name, 1),
    ]
    assert scan.malformed_count == 2
    assert [(m.file.name, m.line) for m in scan.malformed] == [("collector.json", 2), ("collector.json", 3)]
    assert "JSONDecodeError" in scan.malformed[0].reason and "traceId" in scan.malformed[1].reason
    assert [(m.file.name, m.line) for m in scan.incomplete] == [("collector.json", 5)]
    assert [r.line for r in read_spans(directory)] == [1, 4, 1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"stringValue": "x"}, "x"),
        ({"intValue": "-7"}, -7),
        ({"intValue": 7}, 7),
        ({"doubleValue": 0.5}, 0.5),
        ({"doubleValue": "Infinity"}, float("inf")),
        ({"boolValue": False}, False),
        ({"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}}, [1, "a"]),
        ({"arrayValue": {}}, []),
        ({"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}, {"k": True}),
        ({"bytesValue": "AQI="}, b"\x01\x02"),
        ({}, None),
    ],
)
def test_decode_value_gives_plain_python(value: dict[str, Any], expected: Any) -> None:
    assert decode_value(value) == expected


def test_reading_a_missing_directory_says_which() -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list(read_spans(Path("/nowhere/traces")))


class _CollectorHandler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CollectorHandler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_otlp_http_export_reaches_a_collector(tmp_path: Path, collector: ThreadingHTTPServer) -> None:
    telemetry = Telemetry(_settings(tmp_path, otlp_endpoint=f"http://127.0.0.1:{collector.server_port}"))
    telemetry.start()
    telemetry.tracer.start_span(attr.CHAT_SPAN_NAME, attributes={attr.CHOSEN_MODEL: "gpt-4o"}).end()
    telemetry.shutdown()

    ((path, content_type, body),) = collector.received  # type: ignore[attr-defined]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    (span,) = request.resource_spans[0].scope_spans[0].spans
    assert span.name == attr.CHAT_SPAN_NAME
    assert set(telemetry.counts()) == {"file", "otlp"}
    assert telemetry.counts()["otlp"].exported == 1
    assert [r.name for r in read_spans(tmp_path / "traces")] == [attr.CHAT_SPAN_NAME]


def test_a_collector_that_is_down_costs_failures_not_a_slow_shutdown(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    telemetry = Telemetry(_settings(tmp_path, otlp_endpoint=f"http://127.0.0.1:{closed_port}"))
    telemetry.start()
    telemetry.tracer.start_span(attr.CHAT_SPAN_NAME).end()
    started = time.monotonic()
    telemetry.shutdown(timeout_millis=300)

    assert time.monotonic() - started < 3
    counts = telemetry.counts()
    assert (counts["file"].exported, counts["otlp"].exported, counts["otlp"].failed) == (1, 0, 1)
    assert [r.name for r in read_spans(tmp_path / "traces")] == [attr.CHAT_SPAN_NAME]


def test_otlp_url_gets_the_traces_path_only_when_it_has_none() -> None:
    assert otlp_traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert otlp_traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_traces_url("https://x.example/otlp/v1/traces") == "https://x.example/otlp/v1/traces"


def test_disabled_telemetry_is_a_no_op(tmp_path: Path) -> None:
    telemetry = Telemetry(_settings(tmp_path, enabled=False))
    telemetry.start()
    telemetry.tracer.start_span(attr.CHAT_SPAN_NAME).end()
    telemetry.shutdown()
    assert not (tmp_path / "traces").exists()
    assert (telemetry.exported, telemetry.dropped, telemetry.counts()) == (0, 0, {})


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        TelemetrySettings(max_queue_sizee=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="max_export_batch_size"):
        TelemetrySettings(max_queue_size=10, max_export_batch_size=11)


def test_using_the_tracer_before_start_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="lifespan"):
        _ = Telemetry(TelemetrySettings()).tracer


def test_span_record_is_frozen(tmp_path: Path) -> None:
    record = SpanRecord("0" * 32, "0" * 16, None, "x", 0, 0, {}, (), 0, "", {}, tmp_path, 1)
    with pytest.raises(AttributeError):
        record.name = "y"  # type: ignore[misc]
