"""`POST /v1/chat/completions`: the recorded answer of the requested model to the prompt, streamed or not.

Looks up, paces and answers; request parsing, faults and body shapes live in their own modules.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from features.prompt import prompt_from_messages, prompt_id
from serving.replay.completion import PROMPT_ID_HEADER, SSE_MEDIA_TYPE, Answer, completion_body, stream_events
from serving.replay.faults import draw_faults
from serving.replay.latency import draw_delay
from serving.replay.schemas import parse_chat_request
from serving.replay.state import ReplayStateDep

router = APIRouter()


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request, state: ReplayStateDep) -> Response:
    """Answer as the recorded model did: 404 for unknown models or prompts, injected faults first."""
    body = parse_chat_request(await request.body())
    state.index.require_model(body.model)
    faults = draw_faults(state.settings, state.rng, body.stream)
    key = prompt_id(prompt_from_messages([message.as_mapping() for message in body.messages]))
    headers = {PROMPT_ID_HEADER: key}
    record = state.index.lookup(body.model, key)
    answer = Answer.new(body.model, record)
    delay = draw_delay(state.settings.latency, body.model, record.completion_tokens, state.rng)
    if faults.stall_seconds:
        await asyncio.sleep(faults.stall_seconds)
    if body.stream:
        events = stream_events(answer, delay, body.include_usage, faults.broken_stream)
        return StreamingResponse(events, media_type=SSE_MEDIA_TYPE, headers=headers)
    if delay.total:
        await asyncio.sleep(delay.total)
    return Response(completion_body(answer), media_type="application/json", headers=headers)
