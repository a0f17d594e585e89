"""The one admission point of the model routes (chat completions, embeddings). In order: the request's span
starts; the caller is authenticated from the header block; its requests in flight (`max_in_flight_per_key`)
and its rpm are counted — all before a byte of the body is read, so a slow or huge body costs an unknown or
over-limit caller nothing; then the body (its read time bounded by the admission middleware), the field
allow-list, the schema, the model's permissions and the policy. Every refusal ends the span with its status and
is counted, like any other answer.

After the decision, `Admitted.reserve` holds the request's maximum tokens and cost against the caller's tpm and
budget, and `Admitted.settle` charges what the call really used. Nothing here calls an upstream.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from serving.access.guard import ANONYMOUS, Principal
from serving.access.quotas import Ticket
from serving.auth import PRINCIPAL, allow_model, bearer_token, permitted_models, policy_attributes
from serving.exchange import Exchange, read_body
from serving.policy.client_ip import FORWARDED_FOR, client_address
from serving.providers.accounting import estimated_input_tokens
from serving.request_fields import check_fields, forwarded
from serving.request_span import request_attributes
from serving.resilience.key_in_flight import HOLD, KeyHold
from serving.schemas import parse_body, validate
from serving.settings import RequestSettings
from serving.state import GatewayState
from serving.telemetry import attributes as a

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Surface:
    """What a model route declares: its metric and span names, its schema, and the body fields it forwards."""

    endpoint: str
    span_name: str
    operation: str
    schema_name: str
    fields: Callable[[RequestSettings], frozenset[str]]
    writes_tokens: bool = True
    """False for embeddings: a request reserves no output tokens."""


@dataclass
class Admitted(Generic[M]):
    """A request past every check: its span, caller, body (as it goes upstream) and quota ticket."""

    request: Request
    exchange: Exchange
    principal: Principal
    assignment: str
    """A hash of the caller's key ("" when none was sent): what A/B arms are assigned by, absent a user."""
    body: dict[str, Any]
    parsed: M
    ticket: Ticket
    surface: Surface
    caller: str
    """Who the circuit breakers count an upstream failure for: the key id (or `master`), else the client address."""

    _served: tuple[str, ...] | None = field(default=None, init=False, repr=False)

    def served(self, state: GatewayState) -> tuple[str, ...]:
        """The deployments this caller may use (its key's `allowed_models` and the policy), in config order;
        evaluated once per request."""
        if self._served is None:
            self._served = permitted_models(self.request, state, state.policy.served)
        return self._served

    def chain(self, state: GatewayState, model: str) -> tuple[str, ...]:
        """`model` and the failover fallbacks of it this caller may use (a key never falls back to a model it
        may not use); the permissions are looked up only when there are fallbacks to narrow."""
        chain = state.failover.chain(model)
        return chain if len(chain) == 1 else state.failover.chain(model, self.served(state))

    async def reserve(self, state: GatewayState, names: tuple[str, ...], calls: int = 1) -> None:
        """Hold the request's maximum against the caller's tpm and budget: the estimated prompt plus its output
        bound (`max_completion_tokens`/`max_tokens` × `n`, else the model's limit, else the configured default),
        priced at the dearest of `names` (the deployment and its fallbacks), for each of `calls` upstream calls
        (a cascade makes two). 429 when it does not fit."""
        if not self.ticket.metered:
            return
        prompt = estimated_input_tokens(self.body)
        output = self._output_bound(state, names)
        await self.ticket.reserve(calls * (prompt + output), calls * state.providers.max_cost(names, prompt, output))

    def _output_bound(self, state: GatewayState, names: tuple[str, ...]) -> int:
        if not self.surface.writes_tokens:
            return 0
        asked = self.body.get("max_completion_tokens") or self.body.get("max_tokens")
        choices = self.body.get("n") or 1
        if isinstance(asked, int):
            return asked * choices
        known = [state.providers.max_output_tokens(name) for name in names]
        limits = [k for k in known if k is not None]
        reserve = state.config.settings.access.quotas.reserve_output_tokens
        return (max(limits) if len(limits) == len(known) else max([reserve, *limits])) * choices

    async def fail(self, error: BaseException, tokens: int = 0, usd: float = 0.0) -> None:
        """End the span as failed and settle the quota with what was used (nothing, unless a stream had begun)."""
        self.exchange.fail(error)
        await self.ticket.settle(tokens, usd)


async def admit(request: Request, state: GatewayState, surface: Surface, schema: type[M]) -> Admitted[M]:
    """Authenticate, count, read and check the request; any refusal ends its span and is raised."""
    exchange = Exchange(state, surface.endpoint, surface.span_name, request_attributes(surface.operation, "", False))
    try:
        return await _admit(request, state, surface, schema, exchange)
    except BaseException as exc:
        exchange.fail(exc)
        raise


async def _admit(
    request: Request, state: GatewayState, surface: Surface, schema: type[M], exchange: Exchange
) -> Admitted[M]:
    token = bearer_token(request)
    principal = await state.access.principal(token)
    setattr(request.state, PRINCIPAL, principal)
    exchange.actor = principal.actor
    exchange.span.set_attribute(a.KEY_ID, principal.actor)
    hold: KeyHold | None = getattr(request.state, HOLD, None)
    if hold is not None and principal.actor != ANONYMOUS:
        hold.take(principal.actor)  # released by the admission middleware when the response ends
    caller = principal.actor if principal.actor != ANONYMOUS else _client(request, state)
    ticket = await state.access.quotas.admit(principal.key, time.time())
    body = parse_body(await read_body(request))
    check_fields(body, surface.fields(state.config.settings.requests))
    parsed = validate(schema, body, surface.schema_name)
    model: str = getattr(parsed, "model")  # noqa: B009 - every model route's schema has one
    exchange.span.set_attributes(request_attributes(surface.operation, model, getattr(parsed, "stream", False)))
    await allow_model(request, state, model)
    exchange.span.set_attributes(policy_attributes(request))
    assignment = hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""
    return Admitted(request, exchange, principal, assignment, forwarded(body), parsed, ticket, surface, caller)


def _client(request: Request, state: GatewayState) -> str:
    """An anonymous caller (open mode) by its address: the peer, or what a trusted proxy forwarded for."""
    peer = request.client.host if request.client is not None else None
    trusted = state.config.settings.policy.trusted_proxies
    forwarded = ", ".join(request.headers.getlist(FORWARDED_FOR))
    return f"client {client_address(peer, forwarded or None, trusted) or 'unknown'}"
