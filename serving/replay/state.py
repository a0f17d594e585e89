"""What the replay app keeps on `app.state`: settings, the outcome index, the seeded RNG, the models body.

Built once in the lifespan and read through the `ReplayStateDep` dependency; no module-level state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request

from serving.replay.outcomes import OutcomeIndex, load_index
from serving.replay.settings import ReplaySettings

OWNED_BY = "routeiq-replay"


@dataclass(frozen=True, slots=True)
class ReplayState:
    """Per-app state; `rng` is the one seeded generator for jitter and faults."""

    settings: ReplaySettings
    index: OutcomeIndex
    rng: random.Random
    models_body: bytes
    """The `GET /v1/models` JSON, encoded once: the model list never changes while the app runs."""


def build_state(settings: ReplaySettings) -> ReplayState:
    """Load the outcomes file and seed the RNG."""
    index = load_index(settings.outcomes)
    models = [
        {"id": model, "object": "model", "created": index.modified, "owned_by": OWNED_BY} for model in index.models
    ]
    return ReplayState(
        settings=settings,
        index=index,
        rng=random.Random(settings.seed),
        models_body=orjson.dumps({"object": "list", "data": models}),
    )


async def replay_state(request: Request) -> ReplayState:
    """The state the lifespan put on the app (async: a plain `def` dependency costs a worker-thread hop)."""
    state: ReplayState = request.app.state.replay
    return state


ReplayStateDep = Annotated[ReplayState, Depends(replay_state)]
