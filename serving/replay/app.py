"""The replay app factory: lifespan that loads the outcomes, the endpoint routers, OpenAI-shaped errors.

`create_app` builds nothing but the app object; the outcomes file is read when the lifespan starts (or
before, by the caller, who passes the state in).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from serving.api_error import install_error_handlers
from serving.replay.routes import chat_completions, embeddings, models
from serving.replay.schemas import invalid_request
from serving.replay.settings import ReplaySettings
from serving.replay.state import ReplayState, build_state

SERVED_ROUTES = "GET /v1/models, POST /v1/chat/completions and POST /v1/embeddings"


def create_app(settings: ReplaySettings, state: ReplayState | None = None) -> FastAPI:
    """An OpenAI-compatible app serving every model in `settings.outcomes` as recorded (or `state`, when the
    caller has already read them: `serve` does, to report a bad file before the server starts)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.replay = state if state is not None else build_state(settings)
        yield

    app = FastAPI(title="RouteIQ replay provider", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(models.router)
    app.include_router(chat_completions.router)
    app.include_router(embeddings.router)
    install_error_handlers(app, SERVED_ROUTES, invalid_request)
    return app
