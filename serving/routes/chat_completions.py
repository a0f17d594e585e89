"""`POST /v1/chat/completions`: route the virtual model (or take the named deployment), call the provider,
stream or not, and record the exchange. Admission, routing and provider calls live in their own modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from features.prompt import prompt_from_messages
from serving.access.audit import DENIED, AuditEntry
from serving.cascade_call import cascade_complete
from serving.exceptions import ClientDisconnectedError, GatewayError, ModelNotFoundError, PermissionDeniedError
from serving.exchange import unless_client_leaves
from serving.intake import Admitted, Surface, admit
from serving.openapi_spec import UPSTREAM_4XX, ChatCompletion, json_body, responses
from serving.providers import sse
from serving.providers.accounting import estimated_input_tokens
from serving.providers.result import ProviderStream
from serving.request_span import decision_attributes
from serving.routing.policy import Decision, explicit
from serving.schemas import COST_WEIGHT_HEADER, SCHEMA, ChatRequest, header_cost_weight
from serving.settings import RequestSettings
from serving.state import GatewayState, GatewayStateDep
from serving.telemetry import attributes as a

ENDPOINT = "chat_completions"
OPERATION = "chat"
SESSION_HEADER = "x-routeiq-session"
SSE_MEDIA_TYPE = "text/event-stream"
CHAT = Surface(ENDPOINT, a.CHAT_SPAN_NAME, OPERATION, SCHEMA, RequestSettings.chat_fields)

router = APIRouter()


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=responses(ChatCompletion, 400, 401, 403, 404, 429, 502, 503, 504, UPSTREAM_4XX, stream=True),
    openapi_extra=json_body(ChatRequest, "An OpenAI chat body: OpenAI's documented fields; others are refused."),
)
async def create_chat_completion(request: Request, state: GatewayStateDep) -> Response:
    """An OpenAI chat completion from the deployment the router (or the client) picked."""
    admitted = await admit(request, state, CHAT, ChatRequest)
    chat, exchange, body = admitted.parsed, admitted.exchange, admitted.body
    decision: Decision | None = None
    try:
        prompt = prompt_from_messages([m.as_mapping() for m in chat.messages])
        decision = await _decide(state, admitted, prompt)
        headers = exchange.decided(
            decision, decision_attributes(decision, prompt, state.config.settings.telemetry.capture_prompts)
        )
        body["model"] = decision.model
        chain = admitted.chain(state, decision.model)
        if decision.cascade is not None:
            return await _cascade(state, admitted, decision, prompt, headers)
        await admitted.reserve(state, chain)
        if chat.stream:
            started = await state.failover.stream(chain, body, exchange.attempts, admitted.caller)
            headers = exchange.served(started.model, headers)
            forward = _forward(started.value, admitted)
            # The background task runs even after a disconnect cancelled the response mid-`send`, when
            # `forward` may be left suspended: closing it closes the upstream and records the span now.
            return StreamingResponse(
                forward, media_type=SSE_MEDIA_TYPE, headers=headers, background=BackgroundTask(forward.aclose)
            )
        served = await unless_client_leaves(
            request, state.failover.complete(chain, body, exchange.attempts, admitted.caller)
        )
        headers = exchange.served(served.model, headers)
        result = served.value
    except BaseException as exc:
        await admitted.fail(exc, *_left_early(state, admitted, decision, exc))
        raise
    exchange.succeed(result, result.provider, result.cost.usd, result.cost.source)
    await admitted.ticket.settle(result.input_tokens + result.output_tokens, result.cost.usd)
    return Response(result.body, media_type="application/json", headers=headers)


async def _cascade(
    state: GatewayState, admitted: Admitted[ChatRequest], decision: Decision, prompt: str, headers: dict[str, str]
) -> Response:
    """A non-streamed request the cascade answers: reserved for both calls, charged for the calls made."""
    plan, exchange = decision.cascade, admitted.exchange
    assert plan is not None
    await admitted.reserve(state, (*admitted.chain(state, plan.first), *admitted.chain(state, plan.strong)), calls=2)
    answer = await cascade_complete(state, admitted, decision, prompt)
    headers = headers | answer.headers()
    if answer.escalated:
        first = answer.first.value
        headers = exchange.escalated(
            plan.strong, headers, first, answer.first.model, (first.cost.usd, first.cost.source)
        )
    exchange.span.set_attributes(answer.attributes())
    headers = exchange.served(answer.served.model, headers)
    result = answer.served.value
    exchange.succeed(result, result.provider, result.cost.usd, result.cost.source)
    await admitted.ticket.settle(answer.tokens, answer.cost_usd)
    return Response(result.body, media_type="application/json", headers=headers)


def _left_early(
    state: GatewayState, admitted: Admitted[ChatRequest], decision: Decision | None, error: BaseException
) -> tuple[int, float]:
    """What a non-streamed call the client walked out of is charged: its prompt (the upstream had it, and no usage
    came back), priced at the chosen model. Any other failure before an answer is charged nothing."""
    if decision is None or not isinstance(error, ClientDisconnectedError):
        return 0, 0.0
    tokens = estimated_input_tokens(admitted.body)
    return tokens, state.providers.max_cost((decision.model,), tokens, 0)


async def _decide(state: GatewayState, admitted: Admitted[ChatRequest], prompt: str) -> Decision:
    """The named deployment, or the router's choice among the deployments this caller may use."""
    chat, request = admitted.parsed, admitted.request
    routing = state.config.settings.routing
    if chat.model != routing.virtual_model:
        if chat.model not in state.providers.names:
            raise ModelNotFoundError(chat.model, routing.virtual_model)
        return explicit(chat.model)
    served = admitted.served(state)
    if not served:
        await _none_allowed(state, admitted)
    weight = header_cost_weight(request.headers.get(COST_WEIGHT_HEADER))
    if weight is None and chat.routeiq is not None:
        weight = chat.routeiq.cost_weight
    cost_weight = routing.clamp(routing.cost_weight if weight is None else weight)
    key = chat.user or request.headers.get(SESSION_HEADER) or admitted.assignment or prompt
    return await state.policy.decide(prompt, cost_weight, key, served, stream=bool(chat.stream))


async def _none_allowed(state: GatewayState, admitted: Admitted[ChatRequest]) -> None:
    """403 (audited) for a caller whose key and the policy leave the virtual model no deployment to route to."""
    virtual, actor = admitted.parsed.model, admitted.principal.actor
    await state.access.audit(AuditEntry(actor, "policy.model", virtual, DENIED, {"served": list(state.policy.served)}))
    raise PermissionDeniedError(
        f"{virtual!r} routes among {', '.join(state.policy.served)}, and this key ({actor}) may use none of them "
        "(its allowed_models, or the gateway's policy); name a model it may use, or ask an admin for a key that "
        "allows one.",
        param="model",
    )


async def _forward(stream: ProviderStream, admitted: Admitted[ChatRequest]) -> AsyncGenerator[bytes, None]:
    """Pass the provider's SSE bytes on; account and charge the usage once the stream ends, breaks or the client
    leaves (what was streamed so far is charged: tokens counted from the chunks when no usage came).

    A gateway error mid-stream (upstream failure, missed deadline) becomes the last event, `{"error": ...}`,
    which the openai SDK raises as `APIError`. A client that leaves cancels the upstream call."""
    exchange = admitted.exchange
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
    finally:
        summary = stream.summary
        used = (summary.input_tokens + summary.output_tokens, summary.cost.usd) if summary is not None else (0, 0.0)
        await admitted.ticket.settle(*used)
    summary = stream.summary
    if summary is None:
        exchange.fail(RuntimeError("stream ended without a summary"))
        return
    exchange.succeed(summary, summary.provider, summary.cost.usd, summary.cost.source)
