"""`POST /v1/feedback`: a quality score for a response, recorded as a span linked to the request's span.

A response the gateway remembers is rated by the caller that made the request, or by a key whose role is in
`routeiq_settings.feedback.raters` (403 otherwise), once: a later post is refused (409) rather than replacing
the first, so a training label cannot be rewritten. Unknown ids (older than the gateway's memory, or from another
replica) are recorded too, flagged unknown, with the rater's key id and role: the label stage checks those.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from opentelemetry.trace import Link

from serving.access.guard import Principal
from serving.auth import CallerDep, principal_of
from serving.exceptions import FeedbackExistsError, FeedbackNotOwnerError
from serving.exchange import read_body
from serving.openapi_spec import FeedbackRecorded, json_body, responses
from serving.responses import RecentResponse
from serving.schemas import FeedbackRequest, parse_body, validate
from serving.settings import FeedbackSettings
from serving.state import GatewayStateDep
from serving.telemetry import attributes as a

NOT_OWNER = (
    "feedback_not_owner: the response went to another caller, and this key's role may not rate others' responses "
    "(routeiq_settings.feedback.raters); or permission_denied: a routeiq_settings.policy rule refuses it"
)

router = APIRouter()


def _declared() -> dict[int | str, dict[str, Any]]:
    declared = responses(FeedbackRecorded, 400, 401, 403, 409, 503)
    declared[403] = {**declared[403], "description": NOT_OWNER}
    return declared


@router.post(
    "/v1/feedback",
    response_model=None,
    responses=_declared(),
    openapi_extra=json_body(FeedbackRequest, "A score in [0, 1] for a response id the gateway returned."),
)
async def record_feedback(request: Request, state: GatewayStateDep, caller: CallerDep) -> dict[str, Any]:
    feedback = validate(FeedbackRequest, parse_body(await read_body(request)), "feedback schema {id, score, source}")
    rater = principal_of(request)
    remembered = state.responses.find(feedback.id)
    if remembered is not None:
        check_rater(remembered, feedback.id, rater, state.config.settings.feedback)
        remembered.rated = True
    known = remembered is not None
    span = state.telemetry.tracer.start_span(
        a.FEEDBACK_SPAN_NAME,
        links=[Link(remembered.context)] if remembered is not None else None,
        attributes=feedback_attributes(feedback, known, rater),
    )
    span.end()
    state.metrics.feedback.labels(str(known).lower()).inc()
    return {"id": feedback.id, "object": "feedback", "recorded": True, "known": known}


def check_rater(remembered: RecentResponse, response_id: str, rater: Principal, settings: FeedbackSettings) -> None:
    """Refuse feedback on a remembered response from anyone but its owner or a rater role (403), and any after
    the first (409). The owner check comes first, so a stranger learns nothing about whether it was rated."""
    if rater.actor != remembered.owner and rater.role not in settings.raters:
        raise FeedbackNotOwnerError(response_id, tuple(role.value for role in settings.raters))
    if remembered.rated:
        raise FeedbackExistsError(response_id)


def feedback_attributes(feedback: FeedbackRequest, known: bool, rater: Principal) -> dict[str, Any]:
    """The feedback span's attributes: the response, the score, and who rated it (key id, and role if any)."""
    attributes: dict[str, Any] = {
        a.FEEDBACK_RESPONSE_ID: feedback.id,
        a.FEEDBACK_SCORE: feedback.score,
        a.FEEDBACK_SOURCE: feedback.source,
        a.FEEDBACK_KNOWN: known,
        a.KEY_ID: rater.actor,
    }
    if rater.role is not None:
        attributes[a.FEEDBACK_RATER_ROLE] = rater.role.value
    return attributes
