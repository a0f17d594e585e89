"""Recent responses of this gateway: response id → the span context of its request, who made it and whether it
has been rated, so feedback can link to it and be checked. Bounded (oldest forgotten first, rated or not);
feedback for a forgotten id is still recorded, flagged unknown, and only the label stage can check it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from opentelemetry.trace import SpanContext


@dataclass(slots=True)
class RecentResponse:
    """One remembered response: its request's span, its owner (`Principal.actor` of the caller that made the
    request: a key id, `master` or `anonymous`), and whether feedback on it was accepted already."""

    context: SpanContext
    owner: str
    rated: bool = False


class RecentResponses:
    """A bounded map from response id to `RecentResponse`, used on the event loop only.

    The "already rated" mark lives in the entry, so it is bounded by the same `capacity` and forgotten with it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, RecentResponse] = OrderedDict()

    def remember(self, response_id: str, context: SpanContext, owner: str) -> None:
        """Remember a response `owner` received; an id seen again (an upstream repeating ids) starts afresh."""
        self._items[response_id] = RecentResponse(context, owner)
        self._items.move_to_end(response_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def find(self, response_id: str) -> RecentResponse | None:
        return self._items.get(response_id)

    def get(self, response_id: str) -> SpanContext | None:
        """The span context of the request that got `response_id`, if it is still remembered."""
        found = self._items.get(response_id)
        return found.context if found is not None else None

    def __len__(self) -> int:
        return len(self._items)
