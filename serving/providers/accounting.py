"""Turning an upstream answer into tokens and cost: the upstream's usage when it sent one, else estimates.

Reads parsed JSON only (never HTTP, never litellm); both call paths use it, so they account alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from features.prompt import CHARS_PER_TOKEN, estimate_tokens, message_text
from serving.providers.deployment import Deployment
from serving.providers.pricing import PriceMap, request_cost
from serving.providers.result import CallPath, ProviderResult, StreamSummary, StreamTally


@dataclass(frozen=True, slots=True)
class Meter:
    """Accounts one call to `deployment`; `request` (the client's body) is read only to estimate usage."""

    deployment: Deployment
    path: CallPath
    price_map: PriceMap | None
    request: Mapping[str, Any]

    def result(self, body: bytes, data: Mapping[str, Any]) -> ProviderResult:
        """The result of a non-streamed call whose parsed JSON body is `data`."""
        choices = data.get("choices")
        choices = [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
        finish = tuple(str(c["finish_reason"]) for c in choices if c.get("finish_reason"))
        usage = data.get("usage")
        input_tokens, output_tokens, reported, _ = self._usage(usage, lambda: _answer_chars(choices))
        model = data.get("model")
        return ProviderResult(
            body=body,
            response_id=data["id"] if isinstance(data.get("id"), str) else "",
            response_model=model if isinstance(model, str) and model else self.deployment.upstream_model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reasons=finish,
            cost=request_cost(self.deployment, input_tokens, output_tokens, reported, self.price_map),
            provider=self.deployment.provider,
            path=self.path,
        )

    def summary(self, tally: StreamTally) -> StreamSummary:
        """The summary of a stream that ended (or broke off) after the chunks in `tally`."""
        input_tokens, output_tokens, reported, estimated = self._usage(tally.usage, lambda: tally.content_chars)
        return StreamSummary(
            response_id=tally.response_id,
            response_model=tally.response_model or self.deployment.upstream_model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reasons=tuple(tally.finish_reasons),
            cost=request_cost(self.deployment, input_tokens, output_tokens, reported, self.price_map),
            provider=self.deployment.provider,
            path=self.path,
            complete=tally.complete,
            usage_estimated=estimated,
        )

    def _usage(self, usage: object, answer_chars: Callable[[], int]) -> tuple[int, int, float | None, bool]:
        """(input tokens, output tokens, provider's cost, estimated?) from `usage`, or estimated."""
        if not isinstance(usage, Mapping):
            output_tokens = math.ceil(answer_chars() / CHARS_PER_TOKEN)
            return estimated_input_tokens(self.request), output_tokens, None, True
        cost = usage.get("cost")
        reported = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None
        return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), reported, False


def estimated_input_tokens(request: Mapping[str, Any]) -> int:
    """ceil(chars / 4) of a chat request's message texts, or of an embeddings request's input."""
    messages = request.get("messages")
    if isinstance(messages, list):
        text = "\n".join(message_text(m.get("content")) for m in messages if isinstance(m, Mapping))
        return estimate_tokens(text)
    items = request.get("input")
    items = [items] if isinstance(items, str) or _tokens(items) else items
    if not isinstance(items, list):
        return 0
    return sum(len(item) if isinstance(item, list) else estimate_tokens(str(item)) for item in items)


def _tokens(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], int)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _answer_chars(choices: list[dict[str, Any]]) -> int:
    total = 0
    for choice in choices:
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        total += len(content) if isinstance(content, str) else 0
    return total
