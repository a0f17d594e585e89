"""`POST /v1/embeddings`: passed through to the named deployment; the virtual model does not route these."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.exceptions import InvalidRequestError, ModelNotFoundError
from serving.exchange import unless_client_leaves
from serving.intake import Surface, admit
from serving.openapi_spec import UPSTREAM_4XX, EmbeddingList, json_body, responses
from serving.routing.policy import explicit
from serving.schemas import EmbeddingsRequest
from serving.settings import RequestSettings
from serving.state import GatewayStateDep
from serving.telemetry import attributes as a

ENDPOINT = "embeddings"
OPERATION = "embeddings"
EMBEDDINGS = Surface(
    ENDPOINT,
    a.EMBEDDINGS_SPAN_NAME,
    OPERATION,
    "OpenAI embeddings schema",
    RequestSettings.embeddings_fields,
    writes_tokens=False,
)

router = APIRouter()


@router.post(
    "/v1/embeddings",
    response_model=None,
    responses=responses(EmbeddingList, 400, 401, 403, 404, 429, 502, 503, 504, UPSTREAM_4XX),
    openapi_extra=json_body(EmbeddingsRequest, "An OpenAI embeddings body for a named deployment."),
)
async def create_embeddings(request: Request, state: GatewayStateDep) -> Response:
    admitted = await admit(request, state, EMBEDDINGS, EmbeddingsRequest)
    model, exchange = admitted.parsed.model, admitted.exchange
    try:
        virtual = state.config.settings.routing.virtual_model
        if model == virtual:
            raise InvalidRequestError(
                f"{virtual!r} routes chat completions only; name an embedding deployment from GET /v1/models",
                param="model",
            )
        if model not in state.providers.names:
            raise ModelNotFoundError(model, virtual)
        headers = exchange.decided(explicit(model), {a.CHOSEN_MODEL: model})
        chain = admitted.chain(state, model)
        await admitted.reserve(state, chain)
        served = await unless_client_leaves(
            request, state.failover.embed(chain, admitted.body, exchange.attempts, admitted.caller)
        )
        headers = exchange.served(served.model, headers)
        result = served.value
    except BaseException as exc:
        await admitted.fail(exc)
        raise
    exchange.succeed(result, result.provider, result.cost.usd, result.cost.source)
    await admitted.ticket.settle(result.input_tokens + result.output_tokens, result.cost.usd)
    return Response(result.body, media_type="application/json", headers=headers)
