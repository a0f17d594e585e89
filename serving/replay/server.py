"""Running the replay app under uvicorn: blocking (`serve`) or in a background thread (`running`).

Nothing starts at import time; `serve` blocks until stopped, `running` stops its server on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from serving.background_server import ServerStartError, running_server
from serving.replay.app import create_app
from serving.replay.exceptions import ReplaySetupError
from serving.replay.settings import ReplaySettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def server_config(settings: ReplaySettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> uvicorn.Config:
    """The uvicorn config: no access log, since the replay server sits under latency benchmarks."""
    return uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )


def serve(settings: ReplaySettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    uvicorn.Server(server_config(settings, host, port)).run()


@contextmanager
def running(settings: ReplaySettings, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[str]:
    """Serve in a daemon thread (port 0 picks a free port); yield the `/v1` base URL; stop on exit."""
    try:
        with running_server(server_config(settings, host, port), "replay-server") as url:
            yield f"{url}/v1"
    except ServerStartError as exc:
        raise ReplaySetupError(
            f"the replay server for {settings.outcomes} did not start on {host}:{port}; "
            "the uvicorn log above gives the cause (a bad outcomes file, or the port is taken)"
        ) from exc
