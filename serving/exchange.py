"""One request's bookkeeping from decision to last byte: its span, its metrics, its response id.

Ends the span exactly once, whether the request succeeds, fails or the client goes away mid-stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.requests import ClientDisconnect, Request

from serving.api_error import ApiError
from serving.exceptions import ClientDisconnectedError
from serving.providers.result import StreamSummary
from serving.request_span import Usage, usage_attributes
from serving.resilience.failover import Attempt
from serving.routing.cascade import SKIPPED_STREAM
from serving.routing.policy import Decision
from serving.state import GatewayState
from serving.telemetry import attributes as a

ROUTER_VERSION_HEADER = "x-routeiq-router-version"
MODEL_HEADER = "x-routeiq-model"
DECISION_HEADER = "x-routeiq-decision"
CASCADE_HEADER = "x-routeiq-cascade"
NO_ROUTER = "none"
T = TypeVar("T")


async def read_body(request: Request) -> bytes:
    """The request body; a client that leaves while sending it is a `ClientDisconnectedError` (499), which the
    error handler answers without logging a traceback."""
    try:
        return await request.body()
    except ClientDisconnect as exc:
        raise ClientDisconnectedError("The client disconnected while sending the request body.") from exc


async def unless_client_leaves(request: Request, call: Awaitable[T]) -> T:
    """`call`'s result, unless the client disconnects first: then `call` is cancelled (which closes its upstream
    connection, so the upstream stops generating) and `ClientDisconnectedError` is raised. For answers sent
    whole; a stream notices a departed client when a send fails."""
    work = asyncio.ensure_future(call)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    if work.cancelled():
        raise ClientDisconnectedError("The client disconnected before the answer was ready.")
    return work.result()


async def _disconnected(request: Request) -> None:
    """Returns once the server reports the client gone (the body was read already, so nothing else arrives)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class Exchange:
    """Started when the request is parsed; `succeed` or `fail` ends it."""

    def __init__(self, state: GatewayState, endpoint: str, name: str, attributes: dict[str, Any]) -> None:
        self.state = state
        self.endpoint = endpoint
        self.started = time.perf_counter()
        self.span: Span = state.telemetry.tracer.start_span(name, kind=SpanKind.SERVER, attributes=attributes)
        self.model = ""
        self.actor = ""
        """Who made the request (`Principal.actor`: a key id, `master` or `anonymous`); set once authenticated."""
        self.attempts: list[Attempt] = []
        """Failed upstream attempts (retries, fallbacks, open circuits), recorded on the span when it ends."""
        self.by = ""
        """How the model was chosen (`Decision.by`); an exploratory request's cost is counted apart."""
        self._ended = False

    def decided(self, decision: Decision, attributes: dict[str, Any]) -> dict[str, str]:
        """Record the decision; returns the response headers that name it. A captured prompt is scrubbed: users
        paste keys into prompts, and the span files outlive the request (its hash is of the prompt as sent)."""
        self.model = decision.model
        self.by = decision.by
        prompt = attributes.get(a.PROMPT_TEXT)
        if isinstance(prompt, str):
            attributes = {**attributes, a.PROMPT_TEXT: self.state.scrubber.scrub(prompt)}
        self.span.set_attributes(attributes)
        arm = decision.arm or ""
        self.state.metrics.decisions.labels(decision.model, decision.by, arm).inc()
        if decision.fallback_reason:
            self.state.metrics.fallbacks.labels(decision.fallback_reason).inc()
        version = decision.router.label if decision.router is not None else NO_ROUTER
        headers = {MODEL_HEADER: decision.model, ROUTER_VERSION_HEADER: version, DECISION_HEADER: decision.by}
        if decision.cascade_skipped:
            headers[CASCADE_HEADER] = SKIPPED_STREAM
        return headers

    def escalated(
        self, model: str, headers: dict[str, str], first: Usage, first_model: str, cost: tuple[float, str]
    ) -> dict[str, str]:
        """A cascade asked `model` after `first_model`'s answer: `model` is now the chosen one (in the span and
        `x-routeiq-model`), and the first call's cost (USD, source) and tokens are counted under its own model
        (the request's span keeps them as cascade attributes)."""
        cost_usd, cost_source = cost
        self.model = model
        self.span.set_attribute(a.CHOSEN_MODEL, model)
        self.state.metrics.record_cost(first_model, cost_usd, cost_source)
        self.state.metrics.record_tokens(first_model, first.input_tokens, first.output_tokens)
        if first.response_id:
            self.state.responses.remember(first.response_id, self.span.get_span_context(), self.actor)
        return {**headers, MODEL_HEADER: model}

    def served(self, model: str, headers: dict[str, str]) -> dict[str, str]:
        """Record that `model` answered; when a fallback did, the span and `x-routeiq-model` name it."""
        if model != self.model:
            self.span.set_attribute(a.SERVED_MODEL, model)
            self.model = model
            headers = {**headers, MODEL_HEADER: model}
        return headers

    def succeed(self, usage: Usage, provider: str, cost_usd: float, cost_source: str, status: int = 200) -> None:
        if self._ended:
            return
        self.span.set_attributes(usage_attributes(usage, provider, cost_usd, cost_source))
        self.state.metrics.record_cost(self.model, cost_usd, cost_source, explored=self.by == a.DECISION_EXPLORE)
        self.state.metrics.record_tokens(self.model, usage.input_tokens, usage.output_tokens)
        if usage.response_id:
            self.state.responses.remember(usage.response_id, self.span.get_span_context(), self.actor)
        self._end(status)

    def fail(self, error: BaseException, partial: StreamSummary | None = None) -> None:
        """End as failed; a stream cut mid-way still records what was used and what it cost."""
        if self._ended:
            return
        if partial is not None:
            self.span.set_attributes(usage_attributes(partial, partial.provider, partial.cost.usd, partial.cost.source))
            explored = self.by == a.DECISION_EXPLORE
            self.state.metrics.record_cost(self.model, partial.cost.usd, partial.cost.source, explored=explored)
            self.state.metrics.record_tokens(self.model, partial.input_tokens, partial.output_tokens)
        status = error.status_code() if isinstance(error, ApiError) else 500
        code = error.code if isinstance(error, ApiError) else type(error).__name__
        self.span.set_attribute(a.ERROR_TYPE, code)
        # Scrubbed before the cut, so no fragment of a secret an upstream echoed survives in the span.
        self.span.set_status(Status(StatusCode.ERROR, self.state.scrubber.scrub(str(error))[:200]))
        self._end(status)

    def _end(self, status: int) -> None:
        self._ended = True
        if self.attempts:
            self.span.set_attribute(a.FAILED_ATTEMPTS, [f"{at.model}:{at.reason}" for at in self.attempts])
            for attempt in self.attempts:
                self.state.metrics.upstream_failures.labels(attempt.model, attempt.reason).inc()
        elapsed = time.perf_counter() - self.started
        self.span.set_attribute(a.HTTP_STATUS, status)
        self.span.set_attribute(a.LATENCY_MS, elapsed * 1000.0)
        self.span.end()
        self.state.metrics.requests.labels(self.endpoint, self.model, str(status)).inc()
        self.state.metrics.latency.labels(self.endpoint).observe(elapsed)
