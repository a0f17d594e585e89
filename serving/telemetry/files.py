"""Reading OTLP-JSON span files back (ours or an OTel Collector's file exporter) as plain Python records.

Read-only: a malformed line is reported, never fatal, and a last line without its newline is left for later.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

_logger = logging.getLogger(__name__)

SPAN_FILE_SUFFIXES = (".jsonl", ".json")
TRACE_ID_HEX_DIGITS = 32
SPAN_ID_HEX_DIGITS = 16
STATUS_CODES = MappingProxyType({"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2})
SPECIAL_DOUBLES = MappingProxyType({"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf})


@dataclass(frozen=True)
class SpanRecord:
    """One span as read from a file; ids are lowercase hex, attribute values plain Python (lists for arrays)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_unix_nano: int
    end_unix_nano: int
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]
    """(trace_id, span_id) of each linked span: a feedback span links to its request's span."""
    status_code: int
    """0 unset, 1 ok, 2 error (OTLP `Status.code`)."""
    status_message: str
    resource: dict[str, Any]
    file: Path
    line: int
    """1-based line number in `file`."""


@dataclass(frozen=True)
class MalformedLine:
    """A line (or one span in it) that could not be read, and why."""

    file: Path
    line: int
    reason: str
    incomplete: bool = False
    """A last line without its newline: a writer may still be writing it."""


@dataclass(frozen=True)
class SpanScan:
    """Everything readable in a directory plus what was not: malformed lines, and unfinished last lines."""

    records: tuple[SpanRecord, ...]
    malformed: tuple[MalformedLine, ...]
    incomplete: tuple[MalformedLine, ...]
    """Last lines without a newline: a writer may still be writing them, so they are neither read nor errors."""

    @property
    def malformed_count(self) -> int:
        return len(self.malformed)


def span_files(directory: Path) -> list[Path]:
    """The `*.jsonl` and `*.json` files directly in `directory`, in name order."""
    if not directory.is_dir():
        raise FileNotFoundError(f"span directory {directory} does not exist; point it at the gateway's traces.")
    return sorted(p for p in directory.iterdir() if p.suffix in SPAN_FILE_SUFFIXES and p.is_file())


def iter_span_lines(directory: Path) -> Iterator[SpanRecord | MalformedLine]:
    """Streams every span of every file, and a `MalformedLine` for each line or span that cannot be read.

    An unfinished last line comes out as a `MalformedLine` with `incomplete=True`.
    """
    for path in span_files(directory):
        yield from _read_file(path)


def read_spans(directory: Path) -> Iterator[SpanRecord]:
    """Every readable span in `directory`; malformed lines are logged and skipped (use `scan_spans` to count)."""
    for item in iter_span_lines(directory):
        if isinstance(item, SpanRecord):
            yield item
        elif not item.incomplete:
            _logger.warning("Skipping %s line %d: %s", item.file, item.line, item.reason)


def scan_spans(directory: Path) -> SpanScan:
    """All spans in `directory` with every malformed and unfinished line listed."""
    records: list[SpanRecord] = []
    malformed: list[MalformedLine] = []
    incomplete: list[MalformedLine] = []
    for item in iter_span_lines(directory):
        if isinstance(item, SpanRecord):
            records.append(item)
        elif item.incomplete:
            incomplete.append(item)
        else:
            malformed.append(item)
    return SpanScan(tuple(records), tuple(malformed), tuple(incomplete))


def decode_value(value: Any) -> Any:
    """An OTLP-JSON `AnyValue` as a plain Python value; the one place attribute values are decoded."""
    if not isinstance(value, Mapping) or len(value) > 1:
        raise ValueError(f"an attribute value must be an object with one key, got {value!r}")
    if not value:
        return None
    ((kind, raw),) = value.items()
    if kind not in _VALUE_DECODERS:
        raise ValueError(f"unknown attribute value kind {kind!r}")
    return _VALUE_DECODERS[kind](raw)


def decode_attributes(key_values: Any) -> dict[str, Any]:
    """A list of OTLP-JSON `KeyValue` objects as a dict."""
    return {_expect(kv["key"], str, "key"): decode_value(kv.get("value", {})) for kv in _expect(key_values, list, "")}


def _read_file(path: Path) -> Iterator[SpanRecord | MalformedLine]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.endswith(b"\n"):
                yield MalformedLine(path, number, "no trailing newline (still being written?)", incomplete=True)
            elif raw.strip():
                yield from read_line(raw, path, number)


def read_line(raw: bytes, path: Path, number: int) -> Iterator[SpanRecord | MalformedLine]:
    """The spans of line `number` of `path` (one `ExportTraceServiceRequest`, its newline stripped or not), and a
    `MalformedLine` for the line, or for each span in it, that cannot be read.

    Public for readers that keep their own place in a file (the `ingest` stage reads on from a byte offset).
    """
    try:
        request = orjson.loads(raw)
        resource_spans = _expect(request, Mapping, "line").get("resourceSpans", [])
        groups = [(_resource(rs), rs.get("scopeSpans", [])) for rs in _expect(resource_spans, list, "resourceSpans")]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        yield MalformedLine(path, number, _reason(error))
        return
    for resource, scope_spans in groups:
        for span in _spans_of(scope_spans, path, number):
            if isinstance(span, MalformedLine):
                yield span
                continue
            try:
                yield _record(span, resource, path, number)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                yield MalformedLine(path, number, f"span {span.get('name', '?')!r}: {_reason(error)}")


def _spans_of(scope_spans: Any, path: Path, number: int) -> Iterator[Mapping[str, Any] | MalformedLine]:
    try:
        spans = [span for scope in _expect(scope_spans, list, "scopeSpans") for span in scope.get("spans", [])]
    except (TypeError, AttributeError) as error:
        yield MalformedLine(path, number, _reason(error))
        return
    for span in spans:
        yield span if isinstance(span, Mapping) else MalformedLine(path, number, f"a span is not an object: {span!r}")


def _resource(resource_spans: Mapping[str, Any]) -> dict[str, Any]:
    return decode_attributes(resource_spans.get("resource", {}).get("attributes", []))


def _record(span: Mapping[str, Any], resource: dict[str, Any], path: Path, number: int) -> SpanRecord:
    status = span.get("status", {})
    return SpanRecord(
        trace_id=_hex_id(span["traceId"], TRACE_ID_HEX_DIGITS, "traceId"),
        span_id=_hex_id(span["spanId"], SPAN_ID_HEX_DIGITS, "spanId"),
        parent_span_id=_hex_id(span["parentSpanId"], SPAN_ID_HEX_DIGITS, "parentSpanId")
        if span.get("parentSpanId")
        else None,
        name=_expect(span["name"], str, "name"),
        start_unix_nano=int(span["startTimeUnixNano"]),
        end_unix_nano=int(span["endTimeUnixNano"]),
        attributes=decode_attributes(span.get("attributes", [])),
        links=tuple(
            (
                _hex_id(link["traceId"], TRACE_ID_HEX_DIGITS, "traceId"),
                _hex_id(link["spanId"], SPAN_ID_HEX_DIGITS, "spanId"),
            )
            for link in span.get("links", [])
        ),
        status_code=_status_code(status.get("code", 0)),
        status_message=_expect(status.get("message", ""), str, "status.message"),
        resource=resource,
        file=path,
        line=number,
    )


def _hex_id(value: Any, digits: int, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a hex string, got {value!r}")
    text = value.lower()
    if len(text) != digits or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{field} must be {digits} hex digits, got {value!r}")
    return text


def _status_code(value: Any) -> int:
    code = STATUS_CODES[value] if isinstance(value, str) else _expect(value, int, "status.code")
    if code not in STATUS_CODES.values():
        raise ValueError(f"status.code must be 0, 1 or 2, got {value!r}")
    return code


def _expect(value: Any, kind: type | tuple[type, ...], field: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{field or 'value'} has the wrong type: {value!r}")
    return value


def _double(raw: Any) -> float:
    return SPECIAL_DOUBLES[raw] if isinstance(raw, str) else float(_expect(raw, (int, float), "doubleValue"))


_VALUE_DECODERS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "stringValue": lambda raw: _expect(raw, str, "stringValue"),
        "boolValue": lambda raw: _expect(raw, bool, "boolValue"),
        "intValue": lambda raw: int(_expect(raw, (str, int), "intValue")),
        "doubleValue": _double,
        "arrayValue": lambda raw: [decode_value(v) for v in _expect(raw, Mapping, "arrayValue").get("values", [])],
        "kvlistValue": lambda raw: decode_attributes(_expect(raw, Mapping, "kvlistValue").get("values", [])),
        "bytesValue": lambda raw: base64.b64decode(_expect(raw, str, "bytesValue"), validate=True),
    }
)
"""Decoder per `AnyValue` kind; used by `decode_value` only."""


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return f"{type(error).__name__}: {error}"
