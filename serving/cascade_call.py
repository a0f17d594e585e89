"""A cascade request's calls (`routeiq_settings.routing.cascade: verifier`): the version's prompt-only choice
answers, the version's verifier scores the answer, and the strong model is asked when the score is below the bar
λ sets.

Each call is a child span of the request's span; the request's span says what the check scored and which
answer was served, and keeps the escalated first answer's id, cost and tokens, so feedback on that id labels the
first model's outcome as well. If the strong model cannot answer, the first answer is served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from serving.exceptions import GatewayError
from serving.exchange import CASCADE_HEADER, unless_client_leaves
from serving.intake import Admitted
from serving.providers.result import ProviderResult
from serving.request_span import usage_attributes
from serving.resilience.failover import Served
from serving.routing.cascade import (
    ESCALATED,
    ESCALATION_FAILED,
    FIRST,
    FIRST_ID_HEADER,
    FIRST_MODEL_HEADER,
    KEPT,
    SCORE_HEADER,
    THRESHOLD_HEADER,
    CascadeCheck,
    answer_text,
)
from serving.routing.policy import Decision
from serving.state import GatewayState
from serving.telemetry import attributes as a

log = logging.getLogger("routeiq.gateway.cascade")


@dataclass(frozen=True)
class CascadeAnswer:
    """What the cascade served, the answer it checked first, and the verdict (None when the check failed)."""

    served: Served[ProviderResult]
    first: Served[ProviderResult]
    outcome: str
    check: CascadeCheck | None

    @property
    def escalated(self) -> bool:
        return self.served is not self.first

    @property
    def cost_usd(self) -> float:
        """Both calls' cost."""
        return self.served.value.cost.usd + (self.first.value.cost.usd if self.escalated else 0.0)

    @property
    def tokens(self) -> int:
        calls = (self.served, self.first) if self.escalated else (self.served,)
        return sum(c.value.input_tokens + c.value.output_tokens for c in calls)

    def headers(self) -> dict[str, str]:
        found = {CASCADE_HEADER: self.outcome}
        if self.check is not None:
            found |= {SCORE_HEADER: f"{self.check.score:.4f}", THRESHOLD_HEADER: f"{self.check.threshold:.4f}"}
        if self.escalated:
            found |= {FIRST_MODEL_HEADER: self.first.model, FIRST_ID_HEADER: self.first.value.response_id}
        return found

    def attributes(self) -> dict[str, Any]:
        """The request span's cascade attributes."""
        found: dict[str, Any] = {a.CASCADE_OUTCOME: self.outcome, a.CASCADE_COST_USD: self.cost_usd}
        if self.check is not None:
            found |= {a.CASCADE_SCORE: self.check.score, a.CASCADE_THRESHOLD: self.check.threshold}
        if self.escalated:
            first = self.first.value
            found |= {
                a.CASCADE_FIRST_MODEL: self.first.model,
                a.CASCADE_FIRST_RESPONSE_ID: first.response_id,
                a.CASCADE_FIRST_COST_USD: first.cost.usd,
                a.CASCADE_FIRST_INPUT_TOKENS: first.input_tokens,
                a.CASCADE_FIRST_OUTPUT_TOKENS: first.output_tokens,
            }
        return found


async def cascade_complete(
    state: GatewayState, admitted: Admitted[Any], decision: Decision, prompt: str
) -> CascadeAnswer:
    """Ask the first model, check its answer, and ask the strong model when the check says so."""
    plan = decision.cascade
    assert plan is not None
    first = await _step(state, admitted, plan.first, FIRST)
    try:
        verdict: CascadeCheck | None = await state.policy.check(
            plan, prompt, answer_text(first.value.body), first.model, decision.cost_weight
        )
    except Exception:
        log.exception("the cascade verifier of version %s failed; serving the first answer", decision.router)
        verdict = None
    if verdict is None or not verdict.escalate:
        return CascadeAnswer(first, first, KEPT, verdict)
    try:
        served = await _step(state, admitted, plan.strong, ESCALATED)
    except GatewayError as exc:
        log.warning("cascade escalation to %s failed (%s); serving %s's answer", plan.strong, exc, first.model)
        return CascadeAnswer(first, first, ESCALATION_FAILED, verdict)
    return CascadeAnswer(served, first, ESCALATED, verdict)


async def _step(state: GatewayState, admitted: Admitted[Any], model: str, step: str) -> Served[ProviderResult]:
    """One call of the cascade (with the model's failover chain), as a child span of the request's span."""
    exchange = admitted.exchange
    context = trace.set_span_in_context(exchange.span)
    attributes = {a.OPERATION_NAME: a.CHAT_SPAN_NAME, a.REQUEST_MODEL: model, a.CASCADE_STEP: step}
    span = state.telemetry.tracer.start_span(
        a.CASCADE_STEP_SPAN_NAME, context=context, kind=SpanKind.INTERNAL, attributes=attributes
    )
    body = {**admitted.body, "model": model}
    try:
        served = await unless_client_leaves(
            admitted.request,
            state.failover.complete(admitted.chain(state, model), body, exchange.attempts, admitted.caller),
        )
    except BaseException as exc:
        span.set_attribute(a.ERROR_TYPE, type(exc).__name__)
        span.end()
        raise
    result = served.value
    span.set_attributes(usage_attributes(result, result.provider, result.cost.usd, result.cost.source))
    if served.model != model:
        span.set_attribute(a.SERVED_MODEL, served.model)
    span.end()
    return served
