"""`POST /v1/chat/completions`: route the virtual model (or take the named deployment), call the provider,
stream or not, and record the exchange. Parsing, routing and provider calls live in their own modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from features.prompt import prompt_from_messages
from serving.auth import CallerDep
from serving.exceptions import ModelNotFoundError
from serving.exchange import Exchange
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


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request, state: GatewayStateDep, caller: CallerDep) -> Response:
    """An OpenAI chat completion from the deployment the router (or the client) picked."""
    body = parse_body(await request.body())
    chat = validate(ChatRequest, body)
    body.pop(EXTENSION_FIELD, None)
    prompt = prompt_from_messages([m.as_mapping() for m in chat.messages])
    exchange = Exchange(state, ENDPOINT, a.CHAT_SPAN_NAME, request_attributes(OPERATION, chat.model, chat.stream))
    try:
        decision = await _decide(state, request, chat, prompt, caller)
        headers = exchange.decided(
            decision, decision_attributes(decision, prompt, state.config.settings.telemetry.capture_prompts)
        )
        body["model"] = decision.model
        if chat.stream:
            stream = await state.providers.stream(decision.model, body)
            return StreamingResponse(_forward(stream, exchange), media_type=SSE_MEDIA_TYPE, headers=headers)
        result = await state.providers.complete(decision.model, body)
    except BaseException as exc:
        exchange.fail(exc)
        raise
    exchange.succeed(result, result.provider, result.cost.usd, result.cost.source)
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


async def _forward(stream: ProviderStream, exchange: Exchange) -> AsyncIterator[bytes]:
    """Pass the provider's SSE bytes on; account the usage once the stream ends (or the client leaves)."""
    try:
        async for chunk in stream:
            yield chunk
    except BaseException as exc:
        exchange.fail(exc, stream.summary)
        raise
    summary = stream.summary
    if summary is None:
        exchange.fail(RuntimeError("stream ended without a summary"))
        return
    exchange.succeed(summary, summary.provider, summary.cost.usd, summary.cost.source)
