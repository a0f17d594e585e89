"""The replay app factory: lifespan that loads the outcomes, the endpoint routers, OpenAI-shaped errors.

`create_app` builds nothing but the app object; the outcomes file is read when the lifespan starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from serving.api_error import error_response
from serving.replay.exceptions import MethodNotAllowedError, ReplayError, UnknownRouteError
from serving.replay.routes import chat_completions, embeddings, models
from serving.replay.schemas import invalid_request
from serving.replay.settings import ReplaySettings
from serving.replay.state import build_state

SERVED_ROUTES = "GET /v1/models, POST /v1/chat/completions and POST /v1/embeddings"


def create_app(settings: ReplaySettings) -> FastAPI:
    """An OpenAI-compatible app serving every model in `settings.outcomes` as recorded."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.replay = build_state(settings)
        yield

    app = FastAPI(title="RouteIQ replay provider", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(models.router)
    app.include_router(chat_completions.router)
    app.include_router(embeddings.router)
    app.add_exception_handler(ReplayError, _replay_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


async def _replay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReplayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette raises these for unknown paths and methods; answer them in the OpenAI shape too.
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        return error_response(MethodNotAllowedError(f"{where} is not allowed; this server serves {SERVED_ROUTES}."))
    return error_response(UnknownRouteError(f"{where} does not exist; this server serves {SERVED_ROUTES}."))


async def _validation_error(request: Request, exc: Exception) -> Response:
    # Endpoints parse bodies themselves; this only guarantees FastAPI's 422 can never escape.
    assert isinstance(exc, RequestValidationError)
    return error_response(invalid_request(list(exc.errors())))
