"""Span attributes of one gateway request: the routing decision, the prompt, and what the provider returned.

Builds attribute mappings only; starting and ending spans is the routes' job.
"""

from __future__ import annotations

from typing import Any, Protocol

from features.prompt import prompt_id
from serving.routing.cascade import SKIPPED_STREAM
from serving.routing.policy import Decision
from serving.telemetry import attributes as a

Attributes = dict[str, Any]


class Usage(Protocol):
    """What a finished provider call reports (ProviderResult and a stream's summary)."""

    @property
    def response_id(self) -> str: ...
    @property
    def response_model(self) -> str: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def finish_reasons(self) -> tuple[str, ...]: ...


def request_attributes(operation: str, requested: str, stream: bool) -> Attributes:
    return {a.OPERATION_NAME: operation, a.REQUEST_MODEL: requested, a.STREAM: stream}


def decision_attributes(decision: Decision, prompt: str, capture_prompt: bool) -> Attributes:
    """The routing decision: chosen model, how, its propensity, and the router's predictions when it ran."""
    found: Attributes = {
        a.CHOSEN_MODEL: decision.model,
        a.DECISION: decision.by,
        a.PROPENSITY: decision.propensity,
        a.COST_WEIGHT: decision.cost_weight,
        a.PROMPT_HASH: prompt_id(prompt),
    }
    if capture_prompt:
        found[a.PROMPT_TEXT] = prompt
    if decision.arm is not None:
        found[a.ROUTER_ARM] = decision.arm
    if decision.fallback_reason is not None:
        found[a.FALLBACK_REASON] = decision.fallback_reason
    if decision.router is not None:
        found[a.ROUTER_VERSION] = decision.router.label
        found[a.ROUTER_FAMILY] = decision.router.family
    if decision.cascade_skipped:
        found[a.CASCADE_OUTCOME] = SKIPPED_STREAM
    if decision.candidates:
        found[a.CANDIDATES] = list(decision.candidates)
        found[a.PREDICTED_QUALITY] = list(decision.quality)
        found[a.PREDICTED_COST] = list(decision.cost)
    return found


def usage_attributes(usage: Usage, provider: str, cost_usd: float, cost_source: str) -> Attributes:
    return {
        a.PROVIDER_NAME: provider,
        a.RESPONSE_ID: usage.response_id,
        a.RESPONSE_MODEL: usage.response_model,
        a.INPUT_TOKENS: usage.input_tokens,
        a.OUTPUT_TOKENS: usage.output_tokens,
        a.FINISH_REASONS: list(usage.finish_reasons),
        a.COST_USD: cost_usd,
        a.COST_SOURCE: cost_source,
    }
