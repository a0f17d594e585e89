"""Recent responses of this gateway: response id → the span context of its request, so feedback can link
to it. Bounded (oldest forgotten first); feedback for a forgotten id is still recorded, flagged unknown.
"""

from __future__ import annotations

from collections import OrderedDict

from opentelemetry.trace import SpanContext


class RecentResponses:
    """A bounded map from response id to span context, used on the event loop only."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, SpanContext] = OrderedDict()

    def remember(self, response_id: str, context: SpanContext) -> None:
        self._items[response_id] = context
        self._items.move_to_end(response_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, response_id: str) -> SpanContext | None:
        return self._items.get(response_id)

    def __len__(self) -> int:
        return len(self._items)
