"""Every span passes through here before any exporter sees it: secrets scrubbed out of every string (attributes,
sequences of strings, events, links, the status description) and every value clipped to a bounded size.

Builds cleaned copies of ended spans; it never drops a span and never decides what a span records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AttributeValue

from serving.security.scrub import Scrubber

CLIPPED: Final = "…[clipped"
"""How a clipped value ends: `…[clipped from N chars]` (N: its length when it was set, at most)."""
CLIP_MARGIN_CHARS: Final = 1024
"""Read past the limit before scrubbing, then never kept: a secret cut by the clip leaves no fragment behind."""
MAX_SEQUENCE_ITEMS: Final = 128
"""Items kept of a sequence attribute (aligned sequences, candidates and their predictions, stay aligned)."""


def set_time_limit(max_chars: int) -> int:
    """The length the SDK may truncate a value to when it is set: enough past `max_chars` for `clip` to be safe."""
    return max_chars + CLIP_MARGIN_CHARS


@dataclass(frozen=True, slots=True)
class SpanCleaner:
    """Scrubs with `scrubber` (the gateway's: known keys and every recognisable secret) and clips to `max_chars`."""

    scrubber: Scrubber = field(default_factory=Scrubber)
    max_chars: int = 4096

    def text(self, value: str) -> str:
        """`value` scrubbed, and clipped to `max_chars` with a marker saying how much went."""
        if len(value) <= self.max_chars:
            return self.scrubber.scrub(value)
        bound = set_time_limit(self.max_chars)
        cut = len(value) >= bound
        head = self.scrubber.scrub(value[:bound])
        if cut:
            # The SDK or the slice cut the value: its last chars may be the start of a secret no pattern knows.
            head = head[:-CLIP_MARGIN_CHARS]
        elif len(head) <= self.max_chars:
            return head
        at_least = "at least " if cut else ""
        return f"{head[: self.max_chars]}{CLIPPED} from {at_least}{len(value)} chars]"

    def value(self, value: AttributeValue) -> AttributeValue:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            items: list[Any] = [self.text(v) if isinstance(v, str) else v for v in value[:MAX_SEQUENCE_ITEMS]]
            return tuple(items)
        return value

    def attributes(self, attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
        return {key: self.value(value) for key, value in (attributes or {}).items()}

    def span(self, span: ReadableSpan) -> ReadableSpan:
        """A copy of `span` with every string attribute, event, link and status description cleaned."""
        status = span.status
        if status.description:
            status = Status(status.status_code, self.text(status.description))
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=self.attributes(span.attributes),
            events=[Event(e.name, self.attributes(e.attributes), e.timestamp) for e in span.events],
            links=[Link(link.context, self.attributes(link.attributes)) for link in span.links],
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )


class CleaningSpanExporter(SpanExporter):
    """Hands `exporter` cleaned copies of the spans, in the export thread (never on a request's path)."""

    def __init__(self, exporter: SpanExporter, cleaner: SpanCleaner) -> None:
        self.exporter = exporter
        self.cleaner = cleaner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([self.cleaner.span(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
