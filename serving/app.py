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
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Scope

from registry.reference import parse_reference
from registry.tracking import tracking_uri
from serving.access.audit import ALLOWED, DENIED, AuditEntry, open_audit_log
from serving.access.guard import AccessControl
from serving.access.quotas import Quotas, open_quota_store
from serving.access.sqlite_store import SqliteKeyStore
from serving.api_error import ApiError, install_error_handlers
from serving.config import GatewayConfig
from serving.exceptions import AccessUnavailableError
from serving.metrics import GatewayMetrics
from serving.providers.providers import Providers
from serving.resilience.admission import AdmissionMiddleware, InFlight
from serving.resilience.failover import Failover
from serving.responses import RecentResponses
from serving.routes import admin, api_docs, chat_completions, embeddings, feedback, health, keys, metrics, models
from serving.routing.policy import RoutingPolicy
from serving.routing.poller import RegistryPoller
from serving.routing.slots import CHALLENGER, CHAMPION, FAILED, LOADED, PollResult, RouterSlot
from serving.schemas import invalid_request
from serving.security.scrub import Scrubber, scrubbing_logs
from serving.state import GatewayState
from serving.telemetry.tracing import Telemetry

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger("routeiq.gateway")

SERVED_ROUTES = (
    "/v1/chat/completions, /v1/embeddings, /v1/models, /v1/feedback, /admin/router, /admin/keys, /metrics, /_health/*"
)
HOLD_MARGIN_SECONDS = 60.0
UNMATCHED = "unmatched"
ROUTER_WORKERS = 2
"""Threads that run router inference, so a slow router never blocks the event loop."""


def create_app(config: GatewayConfig) -> FastAPI:
    """The gateway for `config`; everything is built when the lifespan starts."""
    scrubber = Scrubber.for_config(config)
    in_flight = InFlight(config.settings.limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for note in config.notes:
            log.info(note)
        with scrubbing_logs(scrubber), ThreadPoolExecutor(ROUTER_WORKERS, thread_name_prefix="router") as executor:
            state = build_state(config, executor)
            state.metrics.watch_in_flight(in_flight.snapshot)
            # First: an unwritable span directory stops the start before anything else has to be stopped.
            state.telemetry.start()
            app.state.gateway = state
            try:
                await state.providers.start()
                await state.poller.poll_once()
                state.poll_task = asyncio.create_task(state.poller.run(), name="registry-poller")
                yield
            finally:
                await _stop(state)

    security = config.settings.security
    public = security.api_docs == "public"
    app = FastAPI(
        title="RouteIQ gateway",
        lifespan=lifespan,
        # A redirect to the trailing-slash-free path would be built from the client's Host header.
        redirect_slashes=False,
        openapi_url="/openapi.json" if public else None,
        docs_url="/docs" if public else None,
        redoc_url="/redoc" if public else None,
    )
    for module in (chat_completions, embeddings, models, feedback, health, metrics, admin, keys):
        app.include_router(module.router)
    if security.api_docs == "operator":
        app.include_router(api_docs.router)
    install_error_handlers(app, SERVED_ROUTES, invalid_request, scrubber.scrub, _count_error)
    app.add_middleware(AdmissionMiddleware, limits=config.settings.limits, on_reject=_count_rejection, counts=in_flight)
    cors = security.cors
    if cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors.allow_origins),
            allow_methods=list(cors.allow_methods),
            allow_headers=list(cors.allow_headers),
            expose_headers=list(cors.expose_headers),
            allow_credentials=cors.allow_credentials,
            max_age=cors.max_age,
        )
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
        allowlist=settings.security.allowlist(),
        limits=settings.limits,
        provider_params=settings.requests.provider_params,
    )
    metrics_ = GatewayMetrics()
    scrubber = Scrubber.for_config(config)
    telemetry = Telemetry(settings.telemetry, scrubber=scrubber)
    failover = Failover(providers, settings.failover)
    metrics_.watch_circuits(failover.breakers.states)
    metrics_.watch_spans(lambda: {k: dataclasses.asdict(v) for k, v in telemetry.counts().items()})
    champion = RouterSlot(CHAMPION, parse_reference(routing.reference))
    challenger = (
        RouterSlot(CHALLENGER, parse_reference(routing.challenger_reference)) if routing.challenger_reference else None
    )
    slots = [champion] if challenger is None else [champion, challenger]
    served = config.model_names
    uri = tracking_uri(settings.tracking_uri)
    policy = RoutingPolicy(champion, challenger, routing, served, executor=executor, rng=random.Random(routing.seed))
    access = build_access(config)
    on_poll = partial(_on_poll, metrics_, access)
    poller = RegistryPoller(slots, routing, served, partial(registry_client, uri), on_poll)
    return GatewayState(
        config=config,
        providers=providers,
        failover=failover,
        telemetry=telemetry,
        metrics=metrics_,
        policy=policy,
        poller=poller,
        responses=RecentResponses(settings.feedback_window),
        scrubber=scrubber,
        access=access,
    )


def build_access(config: GatewayConfig) -> AccessControl:
    """The key store and audit log; both open their files or connections on first use, not here."""
    access = config.settings.access
    return AccessControl(
        keys=SqliteKeyStore(access.key_store, access.secret),
        audit_log=open_audit_log(access.audit),
        master_key=config.master_key,
        audit_required=access.audit.required,
        quotas=Quotas(open_quota_store(access.quotas), access.quotas.teams, _hold_seconds(config)),
    )


def _hold_seconds(config: GatewayConfig) -> float:
    """How long a quota reservation may hold: the longest an upstream call may take, and a minute to settle."""
    total = config.settings.limits.total_seconds or config.settings.upstream_timeout_seconds
    return total + HOLD_MARGIN_SECONDS


def _count_error(request: Request, error: ApiError) -> None:
    """Count an error answer by its route's template (bounded labels: an unknown path is `unmatched`)."""
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None:
        return
    route = request.scope.get("route")
    template = str(getattr(route, "path", UNMATCHED))
    state.metrics.errors.labels(template, str(error.status_code()), error.code).inc()


def _count_rejection(scope: Scope, error: ApiError) -> None:
    """Count a request the admission middleware refused (none before the lifespan built the metrics)."""
    state: GatewayState | None = getattr(scope["app"].state, "gateway", None)
    if state is not None:
        state.metrics.rejections.labels(error.code).inc()


async def _on_poll(metrics_: GatewayMetrics, access: AccessControl, slot: RouterSlot, result: PollResult) -> None:
    """Count every poll; audit every version that went live (a promotion seen) or failed to load."""
    metrics_.reloads.labels(slot.name, result.status).inc()
    active = slot.active
    metrics_.router_version.labels(slot.name).set(active.version or 0 if active else 0)
    if result.status in (LOADED, FAILED):
        outcome = ALLOWED if result.status == LOADED else DENIED
        details = {"version": result.version, "message": result.message}
        try:
            await access.audit(AuditEntry("registry", f"router.{result.status}", slot.name, outcome, details))
        except AccessUnavailableError:
            # The swap has happened already; a required audit log cannot refuse what the registry decided.
            log.exception("the audit log missed %s of %s version %s", result.status, slot.name, result.version)


async def _stop(state: GatewayState) -> None:
    if state.poll_task is not None:
        state.poll_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.poll_task
    await state.providers.aclose()
    await state.access.quotas.store.aclose()
    state.telemetry.shutdown()


def registry_client(uri: str) -> MlflowClient:
    """An MLflow client for `uri`, imported on first use: a gateway serving a router directory never loads
    MLflow (~150 MB with pandas)."""
    from mlflow import MlflowClient

    return MlflowClient(uri, uri)
