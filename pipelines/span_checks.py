"""Vectorised checks of span lines parsed by arrow (`pipelines.span_arrow`): a line passes only when
`serving.telemetry.files.read_line` would read every span in it without error, to the values arrow read, and
every attribute that fills a warehouse column has the kind the exporter writes, so the exact builder accepts it.

Checks only: it flags lines and never says why; the per-line reader says that for the lines it flags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.span_columns import AttributeColumn
from serving.telemetry.files import SPAN_ID_HEX_DIGITS, STATUS_CODES, TRACE_ID_HEX_DIGITS

Indices = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

TRACE_ID: Final = f"^[0-9a-f]{{{TRACE_ID_HEX_DIGITS}}}$"
SPAN_ID: Final = f"^[0-9a-f]{{{SPAN_ID_HEX_DIGITS}}}$"
PARENT_SPAN_ID: Final = f"^([0-9a-f]{{{SPAN_ID_HEX_DIGITS}}})?$"
"""Empty counts as no parent, as it does for `read_line`."""
UNIX_NANOS: Final = "^([0-9]{1,18}|[1-8][0-9]{18})$"
"""Decimal digits that fit an int64; others (negative, longer, signed, spaced) are left to `read_line`."""
INT64: Final = "^-?([0-9]{1,18}|[1-8][0-9]{18})$"
INT32: Final = "^-?[0-9]{1,9}$"


@dataclass(frozen=True)
class CheckedLines:
    """The spans of a parsed chunk, flattened in file order, and which lines failed a check."""

    spans: pa.StructArray
    span_line: Indices
    """The parsed line (row) each span is on."""
    values: pa.StructArray
    """Every span attribute's value (`AnyValue`), in file order."""
    positions: Mapping[str, tuple[Indices, Indices]]
    """Key of an attribute column → (the attributes with that key, the span each one is on)."""
    bad_lines: Mask


def check_lines(table: pa.Table, columns: Sequence[AttributeColumn]) -> CheckedLines:
    """Flatten `table` (one row per line, `span_arrow.LINE_SCHEMA`) to spans and check every line."""
    bad = np.zeros(table.num_rows, np.bool_)
    resources, resource_line = _flatten(table.column("resourceSpans").combine_chunks())
    bad[resource_line[~_valid(resources)]] = True
    attributes, owner = _flatten(pc.struct_field(resources, ["resource", "attributes"]))
    bad[resource_line[owner[~_key_values_ok(attributes)]]] = True
    scopes, scope_resource = _flatten(pc.struct_field(resources, "scopeSpans"))
    scope_line = resource_line[scope_resource]
    bad[scope_line[~_valid(scopes)]] = True
    spans, span_scope = _flatten(pc.struct_field(scopes, "spans"))
    span_line = scope_line[span_scope]
    span_bad = ~_spans_ok(spans)
    attributes, attribute_span = _flatten(pc.struct_field(spans, "attributes"))
    span_bad[attribute_span[~_key_values_ok(attributes)]] = True
    values = pc.struct_field(attributes, "value")
    positions = _positions(pc.struct_field(attributes, "key"), attribute_span, {c.key for c in columns})
    for column in columns:
        if column.key in positions:
            span_bad[_unpivotable(values, positions[column.key], column)] = True
    bad[span_line[span_bad]] = True
    return CheckedLines(spans, span_line, values, positions, bad)


def _flatten(lists: pa.Array) -> tuple[pa.Array, Indices]:
    """The elements of all lists, and the index of the list each one is in."""
    return lists.flatten(), pc.list_parent_indices(lists).to_numpy().astype(np.int64)


def _valid(array: pa.Array) -> Mask:
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), np.bool_)


def _matches(strings: pa.Array, pattern: str, *, absent: bool) -> Mask:
    """Whether each string matches `pattern`; a null counts as `absent`."""
    found = pc.fill_null(pc.match_substring_regex(strings, pattern), absent)
    return np.asarray(found.to_numpy(zero_copy_only=False), np.bool_)


def _spans_ok(spans: pa.StructArray) -> Mask:
    """Spans whose ids, name, times, links and status `read_line` reads as they are (ids already lowercase)."""
    ok = _valid(spans) & _valid(pc.struct_field(spans, "name"))
    for field, pattern in (("traceId", TRACE_ID), ("spanId", SPAN_ID)):
        ok &= _matches(pc.struct_field(spans, field), pattern, absent=False)
    for field in ("startTimeUnixNano", "endTimeUnixNano"):
        ok &= _matches(pc.struct_field(spans, field), UNIX_NANOS, absent=False)
    ok &= _matches(pc.struct_field(spans, "parentSpanId"), PARENT_SPAN_ID, absent=True)
    code = pc.struct_field(spans, ["status", "code"])
    known = pc.is_in(code, value_set=pa.array(list(STATUS_CODES.values())))  # false, not null, for no code
    ok &= ~_valid(code) | np.asarray(known.to_numpy(zero_copy_only=False), np.bool_)
    links, link_span = _flatten(pc.struct_field(spans, "links"))
    link_ok = _valid(links) & _matches(pc.struct_field(links, "traceId"), TRACE_ID, absent=False)
    link_ok &= _matches(pc.struct_field(links, "spanId"), SPAN_ID, absent=False)
    ok[link_span[~link_ok]] = False
    return ok


def _key_values_ok(key_values: pa.StructArray) -> Mask:
    keys = pc.struct_field(key_values, "key")
    return _valid(key_values) & _valid(keys) & _values_ok(pc.struct_field(key_values, "value"))


def _values_ok(values: pa.StructArray) -> Mask:
    """Values holding exactly one thing that `decode_value` decodes to what arrow read. An empty value (None)
    is left to `read_line`: arrow cannot tell `{}` from one whose member is null."""
    kinds = [field.name for field in values.type]
    present = sum(_valid(pc.struct_field(values, kind)).astype(np.int8) for kind in kinds)
    ok = _valid(values) & (present == 1)
    ok &= _matches(pc.struct_field(values, "intValue"), INT64, absent=True)
    finite = pc.fill_null(pc.is_finite(pc.struct_field(values, "doubleValue")), True)  # a bare NaN token
    ok &= np.asarray(finite.to_numpy(zero_copy_only=False), np.bool_)
    if "arrayValue" in kinds:
        elements, parent = _flatten(pc.struct_field(values, ["arrayValue", "values"]))
        ok[parent[~_values_ok(elements)]] = False
    return ok


def _positions(keys: pa.Array, owners: Indices, wanted: set[str]) -> dict[str, tuple[Indices, Indices]]:
    """Where each wanted key is among the attributes, and the span each of those attributes is on."""
    encoded = pc.dictionary_encode(keys)
    codes = pc.fill_null(encoded.indices, -1).to_numpy()
    found: dict[str, tuple[Indices, Indices]] = {}
    for code, key in enumerate(encoded.dictionary.to_pylist()):
        if key in wanted:
            positions = np.flatnonzero(codes == code).astype(np.int64)
            found[key] = (positions, owners[positions])
    return found


def _unpivotable(values: pa.StructArray, found: tuple[Indices, Indices], column: AttributeColumn) -> Indices:
    """Spans whose attribute `column.key` the fast pivot would not read as the exact builder does: repeated
    (the last one counts), of another kind, an integer that may not fit, or -0 (`read_line` reads it as 0)."""
    positions, owners = found
    repeated = owners[1:][owners[1:] == owners[:-1]]
    taken = pc.struct_field(values, column.kind).take(pa.array(positions))
    wrong = ~_valid(taken)
    if column.element is not None:
        wrong |= _wrong_elements(taken, column.element)
    elif column.kind == "intValue":
        wrong |= ~_matches(taken, INT32 if column.type == pa.int32() else INT64, absent=True)
    elif column.kind == "doubleValue":
        wrong |= _negative_zero(taken)
    return np.concatenate([repeated, owners[wrong]])


def _wrong_elements(arrays: pa.StructArray, kind: str) -> Mask:
    """Arrays with an element of another kind than `kind`, or a -0 double."""
    elements, parent = _flatten(pc.struct_field(arrays, "values"))
    chosen = pc.struct_field(elements, kind)
    wrong_element = ~_valid(chosen)
    if kind == "doubleValue":
        wrong_element |= _negative_zero(chosen)
    wrong = np.zeros(len(arrays), np.bool_)
    wrong[parent[wrong_element]] = True
    return wrong


def _negative_zero(doubles: pa.Array) -> Mask:
    """-0 is written as `-0.0` by the exporter; a bare `-0` would read as the integer 0, which arrow cannot tell."""
    found = np.asarray(doubles.to_numpy(zero_copy_only=False), np.float64)
    return np.asarray((found == 0) & np.signbit(found), np.bool_)
