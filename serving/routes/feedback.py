"""`POST /v1/feedback`: a quality score for a response, recorded as a span linked to the request's span.

Unknown ids (older than the gateway's memory, or from another replica) are recorded too, flagged unknown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from opentelemetry.trace import Link

from serving.auth import CallerDep
from serving.exchange import read_body
from serving.openapi_spec import FeedbackRecorded, json_body, responses
from serving.schemas import FeedbackRequest, parse_body, validate
from serving.state import GatewayStateDep
from serving.telemetry import attributes as a

router = APIRouter()


@router.post(
    "/v1/feedback",
    response_model=None,
    responses=responses(FeedbackRecorded, 400, 401, 403, 503),
    openapi_extra=json_body(FeedbackRequest, "A score in [0, 1] for a response id the gateway returned."),
)
async def record_feedback(request: Request, state: GatewayStateDep, caller: CallerDep) -> dict[str, Any]:
    feedback = validate(FeedbackRequest, parse_body(await read_body(request)), "feedback schema {id, score, source}")
    context = state.responses.get(feedback.id)
    known = context is not None
    span = state.telemetry.tracer.start_span(
        a.FEEDBACK_SPAN_NAME,
        links=[Link(context)] if context is not None else None,
        attributes={
            a.FEEDBACK_RESPONSE_ID: feedback.id,
            a.FEEDBACK_SCORE: feedback.score,
            a.FEEDBACK_SOURCE: feedback.source,
            a.FEEDBACK_KNOWN: known,
        },
    )
    span.end()
    state.metrics.feedback.labels(str(known).lower()).inc()
    return {"id": feedback.id, "object": "feedback", "recorded": True, "known": known}
