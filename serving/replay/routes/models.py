"""`GET /v1/models`: every model in the outcomes file, in the OpenAI list shape.

Serves the body encoded at start-up; it never reads the outcomes file.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.replay.state import ReplayStateDep

router = APIRouter()


@router.get("/v1/models")
async def list_models(state: ReplayStateDep) -> Response:
    """The served models, sorted by id."""
    return Response(state.models_body, media_type="application/json")
