"""The gateway app factory: a lifespan that starts providers, telemetry and the registry poller and stops
them in reverse, the endpoint routers, and OpenAI-shaped errors. `create_app` itself starts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from mlflow import MlflowClient
from starlette.exceptions import HTTPException

from registry.reference import parse_reference
from registry.tracking import tracking_uri
from serving.api_error import error_response
from serving.config import GatewayConfig
from serving.exceptions import GatewayError, InvalidRequestError, MethodNotAllowedError, UnknownRouteError
from serving.metrics import GatewayMetrics
from serving.providers.providers import Providers
from serving.responses import RecentResponses
from serving.routes import admin, chat_completions, embeddings, feedback, health, metrics, models
from serving.routing.policy import RoutingPolicy
from serving.routing.poller import RegistryPoller
from serving.routing.slots import CHALLENGER, CHAMPION, PollResult, RouterSlot
from serving.state import GatewayState
from serving.telemetry.tracing import Telemetry

log = logging.getLogger("routeiq.gateway")

SERVED_ROUTES = "/v1/chat/completions, /v1/embeddings, /v1/models, /v1/feedback, /admin/router, /metrics, /_health/*"
ROUTER_WORKERS = 2
"""Threads that run router inference, so a slow router never blocks the event loop."""


def create_app(config: GatewayConfig) -> FastAPI:
    """The gateway for `config`; everything is built when the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for note in config.notes:
            log.info(note)
        with ThreadPoolExecutor(ROUTER_WORKERS, thread_name_prefix="router") as executor:
            state = build_state(config, executor)
            await state.providers.start()
            state.telemetry.start()
            app.state.gateway = state
            try:
                await state.poller.poll_once()
                state.poll_task = asyncio.create_task(state.poller.run(), name="registry-poller")
                yield
            finally:
                await _stop(state)

    app = FastAPI(title="RouteIQ gateway", lifespan=lifespan)
    for module in (chat_completions, embeddings, models, feedback, health, metrics, admin):
        app.include_router(module.router)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


def build_state(config: GatewayConfig, executor: ThreadPoolExecutor) -> GatewayState:
    """Every part of a gateway, not yet started."""
    settings = config.settings
    routing = settings.routing
    providers = Providers(
        config.deployments,
        routing_strategy=config.routing_strategy,
        fast_path=settings.fast_path,
        timeout_seconds=settings.upstream_timeout_seconds,
    )
    metrics_ = GatewayMetrics()
    telemetry = Telemetry(settings.telemetry)
    metrics_.watch_spans(lambda: {k: dataclasses.asdict(v) for k, v in telemetry.counts().items()})
    champion = RouterSlot(CHAMPION, parse_reference(routing.reference))
    challenger = (
        RouterSlot(CHALLENGER, parse_reference(routing.challenger_reference)) if routing.challenger_reference else None
    )
    slots = [champion] if challenger is None else [champion, challenger]
    served = config.model_names
    uri = tracking_uri(settings.tracking_uri)
    policy = RoutingPolicy(champion, challenger, routing, served, executor=executor, rng=random.Random(routing.seed))
    poller = RegistryPoller(slots, routing, served, partial(MlflowClient, uri, uri), partial(_on_poll, metrics_))
    return GatewayState(
        config=config,
        providers=providers,
        telemetry=telemetry,
        metrics=metrics_,
        policy=policy,
        poller=poller,
        responses=RecentResponses(settings.feedback_window),
    )


def _on_poll(metrics_: GatewayMetrics, slot: RouterSlot, result: PollResult) -> None:
    metrics_.reloads.labels(slot.name, result.status).inc()
    active = slot.active
    metrics_.router_version.labels(slot.name).set(active.version or 0 if active else 0)


async def _stop(state: GatewayState) -> None:
    if state.poll_task is not None:
        state.poll_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.poll_task
    await state.providers.aclose()
    state.telemetry.shutdown()


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette raises these for unknown paths and methods; answer them in the OpenAI shape too.
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        return error_response(MethodNotAllowedError(f"{where} is not allowed; this gateway serves {SERVED_ROUTES}."))
    if exc.status_code == HTTPStatus.NOT_FOUND:
        return error_response(UnknownRouteError(f"{where} does not exist; this gateway serves {SERVED_ROUTES}."))
    return error_response(InvalidRequestError(str(exc.detail)))


async def _validation_error(request: Request, exc: Exception) -> Response:
    # Endpoints parse bodies themselves; this only guarantees FastAPI's 422 can never escape.
    assert isinstance(exc, RequestValidationError)
    return error_response(InvalidRequestError(f"Invalid request: {exc.errors()[0].get('msg', 'malformed')}"))
