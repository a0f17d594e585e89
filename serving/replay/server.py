"""Running the replay app under uvicorn: one config builder (tests reuse it) and the blocking `serve`.

Nothing starts at import time; `serve` blocks until the server is stopped.
"""

from __future__ import annotations

import uvicorn

from serving.replay.app import create_app
from serving.replay.settings import ReplaySettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def server_config(
    settings: ReplaySettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> uvicorn.Config:
    """The uvicorn config: no access log, since the replay server sits under latency benchmarks."""
    return uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )


def serve(settings: ReplaySettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    uvicorn.Server(server_config(settings, host, port)).run()
