"""`POST /v1/chat/completions`: route the virtual model (or take the named deployment), call the provider,
stream or not, and record the exchange. Parsing, routing and provider calls live in their own modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from features.prompt import prompt_from_messages
from serving.access.quotas import Ticket
from serving.auth import CallerDep, admit_quota, allow_model, policy_attributes, principal_of
from serving.exceptions import ClientDisconnectedError, GatewayError, ModelNotFoundError
from serving.exchange import Exchange, read_recorded_body, unless_client_leaves
from serving.openapi_spec import UPSTREAM_4XX, ChatCompletion, json_body, responses
from serving.providers import sse
from serving.providers.result import ProviderStream
from serving.request_span import decision_attributes, request_attributes
from serving.routing.policy import Decision, explicit
from serving.schemas import COST_WEIGHT_HEADER, EXTENSION_FIELD, ChatRequest, header_cost_weight, parse_body, validate
from serving.state import GatewayState, GatewayStateDep
from serving.telemetry import attributes as a

ENDPOINT = "chat_completions"
OPERATION = "chat"
SESSION_HEADER = "x-routeiq-session"
SSE_MEDIA_TYPE = "text/event-stream"

router = APIRouter()


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=responses(ChatCompletion, 400, 401, 403, 404, 429, 502, 503, 504, UPSTREAM_4XX, stream=True),
    openapi_extra=json_body(ChatRequest, "An OpenAI chat body; fields the gateway does not read pass through."),
)
async def create_chat_completion(request: Request, state: GatewayStateDep, caller: CallerDep) -> Response:
    """An OpenAI chat completion from the deployment the router (or the client) picked."""
    body = parse_body(await read_recorded_body(request, state, ENDPOINT, a.CHAT_SPAN_NAME, OPERATION))
    chat = validate(ChatRequest, body)
    await allow_model(request, state, chat.model)
    ticket = await admit_quota(request, state)
    body.pop(EXTENSION_FIELD, None)
    prompt = prompt_from_messages([m.as_mapping() for m in chat.messages])
    exchange = Exchange(
        state,
        ENDPOINT,
        a.CHAT_SPAN_NAME,
        request_attributes(OPERATION, chat.model, chat.stream) | policy_attributes(request),
    )
    exchange.actor = principal_of(request).actor
    exchange.span.set_attribute(a.KEY_ID, exchange.actor)
    try:
        decision = await _decide(state, request, chat, prompt, caller)
        headers = exchange.decided(
            decision, decision_attributes(decision, prompt, state.config.settings.telemetry.capture_prompts)
        )
        body["model"] = decision.model
        if chat.stream:
            started = await state.failover.stream(decision.model, body, exchange.attempts)
            headers = exchange.served(started.model, headers)
            forward = _forward(started.value, exchange, ticket)
            # The background task runs even after a disconnect cancelled the response mid-`send`, when
            # `forward` may be left suspended: closing it closes the upstream and records the span now.
            return StreamingResponse(
                forward, media_type=SSE_MEDIA_TYPE, headers=headers, background=BackgroundTask(forward.aclose)
            )
        served = await unless_client_leaves(request, state.failover.complete(decision.model, body, exchange.attempts))
        headers = exchange.served(served.model, headers)
        result = served.value
    except BaseException as exc:
        exchange.fail(exc)
        raise
    exchange.succeed(result, result.provider, result.cost.usd, result.cost.source)
    await ticket.charge(result.input_tokens + result.output_tokens, result.cost.usd)
    return Response(result.body, media_type="application/json", headers=headers)


async def _decide(state: GatewayState, request: Request, chat: ChatRequest, prompt: str, caller: str) -> Decision:
    routing = state.config.settings.routing
    if chat.model != routing.virtual_model:
        if chat.model not in state.providers.names:
            raise ModelNotFoundError(chat.model, routing.virtual_model)
        return explicit(chat.model)
    weight = header_cost_weight(request.headers.get(COST_WEIGHT_HEADER))
    if weight is None and chat.routeiq is not None:
        weight = chat.routeiq.cost_weight
    cost_weight = routing.clamp(routing.cost_weight if weight is None else weight)
    key = chat.user or request.headers.get(SESSION_HEADER) or caller or prompt
    return await state.policy.decide(prompt, cost_weight, key)


async def _forward(stream: ProviderStream, exchange: Exchange, ticket: Ticket) -> AsyncGenerator[bytes, None]:
    """Pass the provider's SSE bytes on; account the usage once the stream ends (or the client leaves).

    A gateway error mid-stream (upstream failure, missed deadline) becomes the last event, `{"error": ...}`,
    which the openai SDK raises as `APIError`. A client that leaves cancels the upstream call."""
    try:
        async for chunk in stream:
            yield chunk
    except GatewayError as exc:
        exchange.fail(exc, stream.summary)
        yield sse.encode(exc.body())
        return
    except (asyncio.CancelledError, GeneratorExit):
        await stream.aclose()
        left = ClientDisconnectedError("The client disconnected (or the server stopped) mid-stream.")
        exchange.fail(left, stream.summary)
        raise
    except BaseException as exc:
        exchange.fail(exc, stream.summary)
        raise
    summary = stream.summary
    if summary is None:
        exchange.fail(RuntimeError("stream ended without a summary"))
        return
    exchange.succeed(summary, summary.provider, summary.cost.usd, summary.cost.source)
    await ticket.charge(summary.input_tokens + summary.output_tokens, summary.cost.usd)
