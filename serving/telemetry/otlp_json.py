"""A fast OTLP-JSON trace encoder: builds the dict of `encode_spans(spans).to_dict()` without the message objects.

Equality guarantee: for any spans, `encode_request(spans)` equals the official dict key for key, in the same key
order and with values of the same types, so `orjson.dumps` of both is byte-identical. Whatever it does not
recognise (a value of another type, a span without context) is handed to the official encoder, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status

Message = dict[str, Any]
Scopes = dict[InstrumentationScope | None, list[ReadableSpan]]

KIND_CODES: Final[Mapping[SpanKind, int]] = MappingProxyType(
    {
        SpanKind.INTERNAL: 1,
        SpanKind.SERVER: 2,
        SpanKind.CLIENT: 3,
        SpanKind.PRODUCER: 4,
        SpanKind.CONSUMER: 5,
    }
)
"""OTLP `Span.SpanKind` per API kind: the API counts from INTERNAL = 0, OTLP reserves 0 for UNSPECIFIED."""

# `SpanFlags` bits: the official encoder always sets the first (the SDK knows whether a context is remote).
HAS_IS_REMOTE: Final = 0x100
IS_REMOTE: Final = 0x200


class _Unhandled(Exception):
    """Something the fast path does not mirror; the official encoder encodes that part instead."""


def encode_request(spans: Collection[ReadableSpan]) -> Message:
    """The OTLP-JSON `ExportTraceServiceRequest` of `spans`, as `encode_spans(spans).to_dict()` returns it.

    Empty (`{}`) when there are no spans, as the official one is.
    """
    groups = _group(spans)
    if not groups:
        return {}
    return {"resourceSpans": [_resource_spans(resource, scopes) for resource, scopes in groups.items()]}


def _group(spans: Iterable[ReadableSpan]) -> dict[Resource, Scopes]:
    """Spans by resource, then scope, in first-seen order, grouped by equality as the official encoder does.

    A cache by object identity comes first because `Resource.__hash__` serialises the attributes to JSON, which
    is costly per span; the first object of each equal group stays the key that gets encoded, as it does there.
    """
    groups: dict[Resource, Scopes] = {}
    by_identity: dict[tuple[int, int], list[ReadableSpan]] = {}
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope or None
        identity = (id(resource), id(scope))
        members = by_identity.get(identity)
        if members is None:
            members = groups.setdefault(resource, {}).setdefault(scope, [])
            by_identity[identity] = members
        members.append(span)
    return groups


def _resource_spans(resource: Resource, scopes: Scopes) -> Message:
    encoded: Message = {
        "resource": _resource(resource),
        "scopeSpans": [_scope_spans(resource, scope, spans) for scope, spans in scopes.items()],
    }
    if resource.schema_url:
        encoded["schemaUrl"] = resource.schema_url
    return encoded


def _scope_spans(resource: Resource, scope: InstrumentationScope | None, spans: list[ReadableSpan]) -> Message:
    encoded: Message = {"scope": _scope(resource, scope), "spans": [_span(span) for span in spans]}
    if scope is not None and scope.schema_url:
        encoded["schemaUrl"] = scope.schema_url
    return encoded


def _resource(resource: Resource) -> Message:
    try:
        attributes = _attributes(resource.attributes)
    except _Unhandled:
        official: Message = _official_envelope(resource, None)["resource"]
        return official
    return {"attributes": attributes} if attributes else {}


def _scope(resource: Resource, scope: InstrumentationScope | None) -> Message:
    if scope is None:
        return {}
    try:
        attributes = _attributes(scope.attributes)
    except _Unhandled:
        official: Message = _official_envelope(resource, scope)["scopeSpans"][0]["scope"]
        return official
    encoded: Message = {}
    if scope.name:
        encoded["name"] = scope.name
    if scope.version:
        encoded["version"] = scope.version
    if attributes:
        encoded["attributes"] = attributes
    return encoded


def _span(span: ReadableSpan) -> Message:
    """One span; the official encoder's output for it when any part is something the fast path does not mirror."""
    try:
        return _fast_span(span)
    except _Unhandled:
        return _official_span(span)


def _fast_span(span: ReadableSpan) -> Message:
    context = span.get_span_context()
    if context is None:
        raise _Unhandled("span without context")
    encoded = _span_identity(span, context)
    _add_span_times(encoded, span)
    _add_span_contents(encoded, span)
    return encoded


def _span_identity(span: ReadableSpan, context: SpanContext) -> Message:
    """Ids, trace state, parent, flags, name and kind: the fields `Span.to_dict` writes first, in its order."""
    encoded: Message = {"traceId": _trace_id(context.trace_id), "spanId": _span_id(context.span_id)}
    trace_state = context.trace_state
    if trace_state:
        encoded["traceState"] = ",".join([f"{key}={value}" for key, value in trace_state.items()])
    parent = span.parent
    if parent:
        encoded["parentSpanId"] = _span_id(parent.span_id)
    encoded["flags"] = _flags(parent)
    if span.name:
        encoded["name"] = span.name
    kind = KIND_CODES.get(span.kind)
    if kind is None:
        raise _Unhandled(span.kind)
    encoded["kind"] = kind
    return encoded


def _add_span_times(encoded: Message, span: ReadableSpan) -> None:
    # int64 fields are strings in proto3 JSON.
    if span.start_time:
        encoded["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        encoded["endTimeUnixNano"] = str(span.end_time)


def _add_span_contents(encoded: Message, span: ReadableSpan) -> None:
    """Attributes, events, links, their dropped counts and the status, each only when `to_dict` writes it."""
    attributes = _attributes(span.attributes)
    if attributes:
        encoded["attributes"] = attributes
    if span.dropped_attributes:
        encoded["droppedAttributesCount"] = span.dropped_attributes
    events, links = span.events, span.links
    if events:
        encoded["events"] = [_event(event) for event in events]
    if span.dropped_events:
        encoded["droppedEventsCount"] = span.dropped_events
    if links:
        encoded["links"] = [_link(link) for link in links]
    if span.dropped_links:
        encoded["droppedLinksCount"] = span.dropped_links
    if span.status is not None:
        encoded["status"] = _status(span.status)


def _event(event: Event) -> Message:
    encoded: Message = {}
    if event.timestamp:
        encoded["timeUnixNano"] = str(event.timestamp)
    if event.name:
        encoded["name"] = event.name
    attributes = _attributes(event.attributes)
    if attributes:
        encoded["attributes"] = attributes
    if event.dropped_attributes:
        encoded["droppedAttributesCount"] = event.dropped_attributes
    return encoded


def _link(link: Link) -> Message:
    # The official encoder never writes a link's trace state, so neither does this one.
    context = link.context
    encoded: Message = {"traceId": _trace_id(context.trace_id), "spanId": _span_id(context.span_id)}
    attributes = _attributes(link.attributes)
    if attributes:
        encoded["attributes"] = attributes
    if link.dropped_attributes:
        encoded["droppedAttributesCount"] = link.dropped_attributes
    encoded["flags"] = _flags(context)
    return encoded


def _status(status: Status) -> Message:
    encoded: Message = {}
    if status.description:
        encoded["message"] = status.description
    if status.status_code.value:
        encoded["code"] = status.status_code.value
    return encoded


def _flags(context: SpanContext | None) -> int:
    return HAS_IS_REMOTE | IS_REMOTE if context and context.is_remote else HAS_IS_REMOTE


def _trace_id(trace_id: int) -> str:
    # `to_bytes` rather than a format string: it fails on out-of-range ids exactly where the official one does.
    return trace_id.to_bytes(16, "big").hex()


def _span_id(span_id: int) -> str:
    return span_id.to_bytes(8, "big").hex()


def _attributes(attributes: Mapping[str, object] | None) -> list[Message]:
    """Key-value list; an empty key is left out of its entry, as `KeyValue.to_dict` leaves out a falsy key."""
    if not attributes:
        return []
    return [
        {"key": key, "value": _value(value)} if key else {"value": _value(value)} for key, value in attributes.items()
    ]


def _value(value: Any) -> Message:
    """An `AnyValue` for the exact types the SDK stores; anything else (bytes, mappings, subclasses) is unhandled.

    Exact type checks, not `isinstance`: `bool` is an `int`, and a subclass could serialise differently. Ordered
    by how often the gateway's attributes have each type.
    """
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is float:
        # x - x is 0.0 for every finite double, NaN for NaN and the infinities: cheaper than a call per value.
        return {"doubleValue": value if value - value == 0.0 else _non_finite(value)}
    if kind is int:
        return {"intValue": str(value)}
    if kind is bool:
        return {"boolValue": value}
    if kind is tuple or kind is list:
        return {"arrayValue": {"values": [_value(item) for item in value]} if value else {}}
    if value is None:
        return {}
    raise _Unhandled(kind)


def _non_finite(value: float) -> str:
    """Proto3 JSON spells the non-finite doubles as strings."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _official_span(span: ReadableSpan) -> Message:
    """The official encoding of one span; a span's encoding does not depend on the others in its batch."""
    request = encode_spans([span]).to_dict()
    span_message: Message = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span_message


def _official_envelope(resource: Resource, scope: InstrumentationScope | None) -> Message:
    """The official `ResourceSpans` of an empty span under `resource` and `scope`: its resource and scope parts."""
    blank = ReadableSpan(name="", resource=resource, instrumentation_scope=scope)
    envelope: Message = encode_spans([blank]).to_dict()["resourceSpans"][0]
    return envelope
