"""`POST /v1/embeddings`: passed through to the named deployment; the virtual model does not route these."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.auth import CallerDep, admit_quota, allow_model, policy_attributes, principal_of
from serving.exceptions import InvalidRequestError, ModelNotFoundError
from serving.exchange import Exchange, read_recorded_body, unless_client_leaves
from serving.openapi_spec import UPSTREAM_4XX, EmbeddingList, json_body, responses
from serving.request_span import request_attributes
from serving.routing.policy import explicit
from serving.schemas import EmbeddingsRequest, parse_body, validate
from serving.state import GatewayStateDep
from serving.telemetry import attributes as a

ENDPOINT = "embeddings"
OPERATION = "embeddings"

router = APIRouter()


@router.post(
    "/v1/embeddings",
    response_model=None,
    responses=responses(EmbeddingList, 400, 401, 403, 404, 429, 502, 503, 504, UPSTREAM_4XX),
    openapi_extra=json_body(EmbeddingsRequest, "An OpenAI embeddings body for a named deployment."),
)
async def create_embeddings(request: Request, state: GatewayStateDep, caller: CallerDep) -> Response:
    body = parse_body(await read_recorded_body(request, state, ENDPOINT, a.EMBEDDINGS_SPAN_NAME, OPERATION))
    parsed = validate(EmbeddingsRequest, body, "OpenAI embeddings schema")
    await allow_model(request, state, parsed.model)
    virtual = state.config.settings.routing.virtual_model
    if parsed.model == virtual:
        raise InvalidRequestError(
            f"{virtual!r} routes chat completions only; name an embedding deployment from GET /v1/models",
            param="model",
        )
    if parsed.model not in state.providers.names:
        raise ModelNotFoundError(parsed.model, virtual)
    ticket = await admit_quota(request, state)
    exchange = Exchange(
        state,
        ENDPOINT,
        a.EMBEDDINGS_SPAN_NAME,
        request_attributes(OPERATION, parsed.model, False) | policy_attributes(request),
    )
    exchange.actor = principal_of(request).actor
    exchange.span.set_attribute(a.KEY_ID, exchange.actor)
    try:
        headers = exchange.decided(explicit(parsed.model), {a.CHOSEN_MODEL: parsed.model})
        served = await unless_client_leaves(request, state.failover.embed(parsed.model, body, exchange.attempts))
        headers = exchange.served(served.model, headers)
        result = served.value
    except BaseException as exc:
        exchange.fail(exc)
        raise
    exchange.succeed(result, result.provider, result.cost.usd, result.cost.source)
    await ticket.charge(result.input_tokens + result.output_tokens, result.cost.usd)
    return Response(result.body, media_type="application/json", headers=headers)
