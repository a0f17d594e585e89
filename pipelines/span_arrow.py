"""The `ingest` stage's fast path: a chunk of OTLP-JSON span lines parsed by arrow's native JSON reader in one go,
checked and pivoted into `requests` and `feedback` rows with arrow and numpy instead of span by span in Python.

It vouches only for lines it has checked would read exactly as `serving.telemetry.files.read_line` reads them;
every other line (malformed, or merely unusual) is handed back for that reader. It never reports a line malformed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipelines.span_checks import check_lines
from pipelines.span_columns import (
    FEEDBACK_ATTRIBUTES,
    REQUEST_ATTRIBUTES,
    AttributeColumn,
    attribute_columns,
    feedback_table,
    micros,
    request_table,
)
from serving.telemetry import attributes as a

Indices = npt.NDArray[np.int64]
Line = tuple[int, bytes]
"""A line's 1-based number in its file, and its bytes without the newline."""

SCALAR_VALUE: Final = pa.struct(
    [("stringValue", pa.string()), ("boolValue", pa.bool_()), ("intValue", pa.string()), ("doubleValue", pa.float64())]
)
"""An OTLP `AnyValue` inside an array; a kind not listed (nested arrays, kvlists, bytes) sends its line back."""
ANY_VALUE: Final = pa.struct([*SCALAR_VALUE, ("arrayValue", pa.struct([("values", pa.list_(SCALAR_VALUE))]))])
_KEY_VALUES = pa.list_(pa.struct([("key", pa.string()), ("value", ANY_VALUE)]))
_SPAN = pa.struct(
    [
        *[(name, pa.string()) for name in ("traceId", "spanId", "parentSpanId", "name")],
        ("startTimeUnixNano", pa.string()),
        ("endTimeUnixNano", pa.string()),
        ("attributes", _KEY_VALUES),
        ("links", pa.list_(pa.struct([("traceId", pa.string()), ("spanId", pa.string())]))),
        ("status", pa.struct([("code", pa.int64()), ("message", pa.string())])),
    ]
)
LINE_SCHEMA: Final = pa.schema(
    [
        (
            "resourceSpans",
            pa.list_(
                pa.struct(
                    [
                        ("resource", pa.struct([("attributes", _KEY_VALUES)])),
                        ("scopeSpans", pa.list_(pa.struct([("spans", pa.list_(_SPAN))]))),
                    ]
                )
            ),
        )
    ]
)
"""What is read of a line: every field `read_line` reads, with the type the exporter writes it in. Other fields
are inferred (and ignored); a declared field of another JSON type fails the parse, which sends its line back."""
MIN_BLOCK_BYTES: Final = 2**20
"""Parse blocks (one per thread at a time); a block must hold the longest line, so it grows with it."""
_MEMBER_NULL = re.compile(rb'(?<!\\)"[ \t\r\n]*:[ \t\r\n]*null')
"""`"member": null` outside a string (inside one, every quote is escaped): the parser cannot tell it from an
absent member, and `read_line` treats most of them differently."""
_STRING_DOUBLE = b'"doubleValue":"'
"""NaN and ±Infinity are written as strings, which the parser will not read as doubles."""


@dataclass(frozen=True)
class ArrowRead:
    """What the fast path vouches for in one chunk, and the lines it hands back to be read one by one."""

    requests: pa.Table
    feedback: pa.Table
    spans: int
    other_spans: int
    """Spans vouched for that are neither requests nor feedback."""
    exact_lines: list[Line]
    """In file order."""


def read_chunk(chunk: bytes, path: Path, first_line: int) -> ArrowRead:
    """The rows of the lines of `chunk` (whole lines, the first being line `first_line` of `path`) it can vouch
    for, typed as the exact builders type them; blank lines are skipped, the other lines handed back."""
    schemas = (request_table([]).schema, feedback_table([]).schema)
    candidates, unusual, whole = _screen(chunk, first_line)
    parsed, rejected = _parsed(candidates, chunk if whole else None)
    parts = [_vouch(table, lines, path, schemas) for table, lines in parsed]
    return ArrowRead(
        requests=pa.concat_tables([schemas[0].empty_table(), *(part.requests for part in parts)]),
        feedback=pa.concat_tables([schemas[1].empty_table(), *(part.feedback for part in parts)]),
        spans=sum(part.spans for part in parts),
        other_spans=sum(part.other_spans for part in parts),
        exact_lines=sorted([*unusual, *rejected, *(line for part in parts for line in part.exact_lines)]),
    )


def _screen(chunk: bytes, first_line: int) -> tuple[list[Line], list[Line], bool]:
    """The lines to parse, the unusual ones, and whether the chunk holds nothing else (so it is parsed as it
    is, without a copy); blank lines are neither."""
    raws = chunk.split(b"\n")
    raws.pop()  # what follows the last newline: nothing
    candidates: list[Line] = []
    unusual: list[Line] = []
    for number, raw in enumerate(raws, start=first_line):
        if raw and not raw.isspace():
            (unusual if _unusual(raw) else candidates).append((number, raw))
    return candidates, unusual, len(candidates) == len(raws)


def _parsed(lines: list[Line], data: bytes | None = None) -> tuple[list[tuple[pa.Table, list[Line]]], list[Line]]:
    """Parsed runs of `lines` (one row per line), and the lines the parser rejects, found by halving a run
    that fails until the failure is down to one line: a malformed line costs a few parses, not its chunk."""
    if not lines:
        return [], []
    table = _parse(data if data is not None else b"\n".join(raw for _, raw in lines) + b"\n", lines)
    if table is not None:
        return [(table, lines)], []
    if len(lines) == 1:
        return [], lines
    half = len(lines) // 2
    first, first_rejected = _parsed(lines[:half])
    second, second_rejected = _parsed(lines[half:])
    return first + second, first_rejected + second_rejected


def _vouch(table: pa.Table, lines: list[Line], path: Path, schemas: tuple[pa.Schema, pa.Schema]) -> ArrowRead:
    """The rows of the parsed `lines` that pass every check; the others are handed back."""
    checked = check_lines(table, [*attribute_columns(REQUEST_ATTRIBUTES), *attribute_columns(FEEDBACK_ATTRIBUTES)])
    fast = ~checked.bad_lines[checked.span_line]
    names = pc.fill_null(pc.struct_field(checked.spans, "name"), "").to_numpy(zero_copy_only=False)
    requests = np.flatnonzero(fast & (names == a.CHAT_SPAN_NAME))
    feedback = np.flatnonzero(fast & (names == a.FEEDBACK_SPAN_NAME))
    numbers = np.array([number for number, _ in lines], np.int64)
    rows = _Rows(checked.spans, checked.values, checked.positions, str(path), numbers[checked.span_line])
    return ArrowRead(
        requests=rows.requests(requests).cast(schemas[0]),
        feedback=rows.feedback(feedback).cast(schemas[1]),
        spans=int(fast.sum()),
        other_spans=int(fast.sum()) - len(requests) - len(feedback),
        exact_lines=[lines[i] for i in np.flatnonzero(checked.bad_lines)],
    )


def _unusual(raw: bytes) -> bool:
    """Lines the parser might read differently from `read_line`: not one object alone on its line (so the
    parser's rows are the lines), a double written as a string, or a member set to null."""
    if raw[:1] != b"{" or raw[-1:] != b"}" or _STRING_DOUBLE in raw:
        return True
    return b"null" in raw and _MEMBER_NULL.search(raw) is not None


def _parse(data: bytes, lines: list[Line]) -> pa.Table | None:
    """One row per line, or None when the parser rejects `data` or reads it into another shape."""
    block = max(MIN_BLOCK_BYTES, 2 * max(len(raw) for _, raw in lines))
    options = pj.ParseOptions(explicit_schema=LINE_SCHEMA, unexpected_field_behavior="infer")
    try:
        table = pj.read_json(io.BytesIO(data), pj.ReadOptions(block_size=block), options)
    except (pa.ArrowException, ValueError):
        return None  # malformed or of another shape somewhere: the per-line reader says where and why
    parsed = table.schema.field("resourceSpans").type
    if table.num_rows != len(lines) or not _as_declared(parsed, LINE_SCHEMA.field("resourceSpans").type):
        return None
    return table


def _as_declared(parsed: pa.DataType, declared: pa.DataType) -> bool:
    """Whether `parsed` has every declared field with its declared type. Extra fields are fine (`read_line`
    ignores them) except in a value, where an unknown kind is an error `read_line` must report."""
    if declared in (ANY_VALUE, SCALAR_VALUE) or not pa.types.is_nested(declared):
        return bool(parsed == declared)
    if pa.types.is_list(declared):
        return pa.types.is_list(parsed) and _as_declared(parsed.value_type, declared.value_type)
    found = {field.name: field.type for field in parsed} if pa.types.is_struct(parsed) else {}
    return all(f.name in found and _as_declared(found[f.name], f.type) for f in declared)


@dataclass(frozen=True)
class _Rows:
    """Builds table rows from the checked spans of a chunk; `positions[key]` are the attributes named `key`."""

    spans: pa.StructArray
    values: pa.StructArray
    """Every span attribute's value (`AnyValue`), in file order."""
    positions: Mapping[str, tuple[Indices, Indices]]
    """Attribute key → (the attributes with that key, the span of each)."""
    file: str
    line: Indices
    """Line number of each span."""

    def requests(self, rows: Indices) -> pa.Table:
        columns = self._span_columns(rows)
        columns["started_at"] = self._time(rows, "startTimeUnixNano")
        columns["ended_at"] = self._time(rows, "endTimeUnixNano")
        return pa.table(columns | self._attributes(rows, REQUEST_ATTRIBUTES))

    def feedback(self, rows: Indices) -> pa.Table:
        columns = self._span_columns(rows)
        columns["scored_at"] = self._time(rows, "startTimeUnixNano")
        columns["request_span_id"] = self._first_link(rows)
        return pa.table(columns | self._attributes(rows, FEEDBACK_ATTRIBUTES))

    def _span_columns(self, rows: Indices) -> dict[str, pa.Array]:
        return {
            "span_id": pc.struct_field(self.spans, "spanId").take(rows),
            "trace_id": pc.struct_field(self.spans, "traceId").take(rows),
            "file": pa.array([self.file] * len(rows), pa.string()),
            "line": pa.array(self.line[rows], pa.int64()),
        }

    def _time(self, rows: Indices, field: str) -> pa.Array:
        return micros(pc.struct_field(self.spans, field).take(rows).cast(pa.int64()))

    def _first_link(self, rows: Indices) -> pa.Array:
        links = pc.struct_field(self.spans, "links").take(rows)
        counts = pc.fill_null(pc.list_value_length(links), 0).to_numpy(zero_copy_only=False)
        linked = pa.array(np.cumsum(counts) - counts, pa.int64(), mask=counts == 0)
        return pc.struct_field(links.flatten(), "spanId").take(linked)

    def _attributes(self, rows: Indices, columns: Mapping[str, tuple[str, pa.DataType]]) -> dict[str, pa.Array]:
        return {column.name: self._attribute(rows, column) for column in attribute_columns(columns)}

    def _attribute(self, rows: Indices, column: AttributeColumn) -> pa.Array:
        """The column's values for `rows`: each span's attribute `column.key`, null where it has none."""
        slot = np.full(len(self.spans), -1, np.int64)
        positions, owners = self.positions.get(column.key, (np.empty(0, np.int64), np.empty(0, np.int64)))
        slot[owners] = positions
        chosen = slot[rows]
        taken = pc.struct_field(self.values, column.kind).take(pa.array(chosen, mask=chosen < 0))
        if column.element is None:
            return taken.cast(column.type)
        return _elements(taken, column.element, chosen < 0).cast(column.type)


def _elements(arrays: pa.Array, kind: str, absent: npt.NDArray[np.bool_]) -> pa.Array:
    """`arrayValue`s as lists of their elements' `kind` values; null where `absent`, and [] for an array
    written without `values`."""
    lists = pc.struct_field(arrays, "values")
    counts = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    values = pc.struct_field(lists.flatten(), kind)
    return pa.ListArray.from_arrays(offsets, values, mask=pa.array(absent))
