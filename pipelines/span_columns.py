"""The warehouse's `requests` and `feedback` columns and the span attribute each one comes from, and the exact
builder of their rows from spans read one by one; the vectorised reader (`pipelines.span_arrow`) must match it.

Builds arrow tables only; it neither reads files nor touches DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from serving.telemetry import attributes as a
from serving.telemetry.files import MalformedLine, SpanRecord

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
NANOS_PER_MICRO: Final = 1000
REQUEST_ATTRIBUTES: Final = MappingProxyType(
    {
        "response_id": (a.RESPONSE_ID, pa.string()),
        "latency_ms": (a.LATENCY_MS, pa.float64()),
        "request_model": (a.REQUEST_MODEL, pa.string()),
        "chosen_model": (a.CHOSEN_MODEL, pa.string()),
        "served_model": (a.SERVED_MODEL, pa.string()),
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
        "key_id": (a.KEY_ID, pa.string()),
        "cascade_outcome": (a.CASCADE_OUTCOME, pa.string()),
        "cascade_score": (a.CASCADE_SCORE, pa.float64()),
        "cascade_first_model": (a.CASCADE_FIRST_MODEL, pa.string()),
        "cascade_first_response_id": (a.CASCADE_FIRST_RESPONSE_ID, pa.string()),
        "cascade_first_cost_usd": (a.CASCADE_FIRST_COST_USD, pa.float64()),
        "cascade_first_input_tokens": (a.CASCADE_FIRST_INPUT_TOKENS, pa.int64()),
        "cascade_first_output_tokens": (a.CASCADE_FIRST_OUTPUT_TOKENS, pa.int64()),
    }
)
"""`requests` column → (span attribute, arrow type); the span's ids, times, file and line come on top."""
FEEDBACK_ATTRIBUTES: Final = MappingProxyType(
    {
        "response_id": (a.FEEDBACK_RESPONSE_ID, pa.string()),
        "score": (a.FEEDBACK_SCORE, pa.float64()),
        "source": (a.FEEDBACK_SOURCE, pa.string()),
        "known": (a.FEEDBACK_KNOWN, pa.bool_()),
        "key_id": (a.KEY_ID, pa.string()),
        "rater_role": (a.FEEDBACK_RATER_ROLE, pa.string()),
    }
)
"""`feedback` column → (span attribute, arrow type); ids, time, link, file and line come on top."""
OTLP_KINDS: Final = MappingProxyType(
    {pa.string(): "stringValue", pa.float64(): "doubleValue", pa.bool_(): "boolValue"}
    | {pa.int64(): "intValue", pa.int32(): "intValue"}
)
"""The `AnyValue` kind the gateway's exporter writes for a value of each column type."""
MALFORMED_SCHEMA: Final = pa.schema([("file", pa.string()), ("line", pa.int64()), ("reason", pa.string())])

Builder = Callable[[Sequence[SpanRecord]], pa.Table]
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError)


@dataclass(frozen=True)
class AttributeColumn:
    """A column that comes from a span attribute, and how the exporter writes that attribute."""

    name: str
    key: str
    type: pa.DataType

    @property
    def kind(self) -> str:
        """The attribute's `AnyValue` kind: `arrayValue` for a list column."""
        return "arrayValue" if pa.types.is_list(self.type) else str(OTLP_KINDS[self.type])

    @property
    def element(self) -> str | None:
        """For a list column, the kind of each element of the array."""
        return str(OTLP_KINDS[self.type.value_type]) if pa.types.is_list(self.type) else None


def attribute_columns(columns: Mapping[str, tuple[str, pa.DataType]]) -> list[AttributeColumn]:
    """`REQUEST_ATTRIBUTES` or `FEEDBACK_ATTRIBUTES` as a list, in column order."""
    return [AttributeColumn(name, key, kind) for name, (key, kind) in columns.items()]


def request_table(spans: Sequence[SpanRecord]) -> pa.Table:
    """Rows of the `requests` table."""
    columns = _span_columns(spans)
    columns["started_at"] = micros(pa.array([s.start_unix_nano for s in spans], pa.int64()))
    columns["ended_at"] = micros(pa.array([s.end_unix_nano for s in spans], pa.int64()))
    return pa.table(columns | _attribute_columns(spans, REQUEST_ATTRIBUTES))


def feedback_table(spans: Sequence[SpanRecord]) -> pa.Table:
    """Rows of the `feedback` table."""
    columns = _span_columns(spans)
    columns["scored_at"] = micros(pa.array([s.start_unix_nano for s in spans], pa.int64()))
    columns["request_span_id"] = pa.array([s.links[0][1] if s.links else None for s in spans], pa.string())
    return pa.table(columns | _attribute_columns(spans, FEEDBACK_ATTRIBUTES))


def split_wrong_types(spans: Sequence[SpanRecord], build: Builder) -> tuple[pa.Table, list[MalformedLine]]:
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


def malformed_table(malformed: Sequence[MalformedLine]) -> pa.Table:
    rows = {"file": [str(m.file) for m in malformed], "line": [m.line for m in malformed]}
    return pa.table({**rows, "reason": [m.reason for m in malformed]}, schema=MALFORMED_SCHEMA)


def micros(unix_nanos: pa.Array) -> pa.Array:
    """Nanoseconds since the epoch (int64) as the warehouse's microsecond UTC timestamps."""
    return pc.divide(unix_nanos, NANOS_PER_MICRO).cast(TIMESTAMP)


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
