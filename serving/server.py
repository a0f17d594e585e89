"""Running the gateway under uvicorn: blocking (`serve`, for `routeiq serve`) or in a background thread
(`running`, for tests, the demo and benchmarks). Nothing starts at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from serving.app import create_app
from serving.background_server import running_server
from serving.config import GatewayConfig
from serving.http_protocol import protocol_for
from serving.security.scrub import Scrubber, SecretFilter
from serving.startup import bound_url, listen, run_until_stopped

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
LOGGER = "routeiq"


def server_config(
    config: GatewayConfig, host: str, port: int, access_log: bool = False, loop: str = "auto"
) -> uvicorn.Config:
    """`loop="auto"` takes uvloop when installed, as requirements.txt does. HTTP/1.1 is always httptools, in the
    gateway's protocol (`serving.http_protocol`: no trailers as headers, a head deadline, JSON parse errors)."""
    return uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        loop=loop,
        http=protocol_for(config.settings.limits),
        log_level="info",
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=30,
        # uvicorn would take X-Forwarded-For from loopback peers as the client address; the policy engine
        # decides whose forwarding to trust (`routeiq_settings.policy.trusted_proxies`).
        proxy_headers=False,
    )


def show_logs(level: int = logging.INFO) -> None:
    """Send the gateway's own log lines (router loads, superseded config keys, zero prices) to stderr."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        # Shapes only (no config here); the app adds the configured keys while it runs (`scrubbing_logs`).
        handler.addFilter(SecretFilter(Scrubber()))
        logger.addHandler(handler)
    logger.setLevel(level)


def serve(config: GatewayConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, access_log: bool = False) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). Every request is a span; `access_log` adds a log line each.

    The port is bound before the app starts: a taken port or one outside 0..65535 raises `ListenError`, and an
    exception of the start-up is raised here, not logged as a traceback."""
    show_logs()
    sock = listen(host, port)
    url = bound_url(sock)
    run_until_stopped(
        server_config(config, host, port, access_log=access_log),
        sock,
        on_started=lambda: logging.getLogger(LOGGER).info("gateway listening on %s (Ctrl-C to stop)", url),
    )


@contextmanager
def running(config: GatewayConfig, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[str]:
    """Serve in a daemon thread (port 0 picks a free port); yield the base URL (no `/v1`); stop on exit."""
    # The stock asyncio loop in a thread: uvloop refuses to close (EBUSY) while a library (LiteLLM) still
    # holds handles on it, which a process exit tolerates but a test's thread teardown reports.
    with running_server(server_config(config, host, port, loop="asyncio"), "routeiq-gateway") as url:
        yield url
