"""Running the replay app under uvicorn: blocking (`serve`) or in a background thread (`running`).

Nothing starts at import time; `serve` blocks until stopped, `running` stops its server on exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from serving.replay.app import create_app
from serving.replay.exceptions import ReplaySetupError
from serving.replay.settings import ReplaySettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100
START_TIMEOUT_SECONDS = 30.0


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
    server = uvicorn.Server(server_config(settings, host, port))
    thread = threading.Thread(target=_run_quietly, args=(server,), name="replay-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ReplaySetupError(
                f"the replay server for {settings.outcomes} did not start on {host}:{port}; "
                "the uvicorn log above gives the cause (a bad outcomes file, or the port is taken)"
            )
        time.sleep(0.01)
    bound: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_SECONDS)


def _run_quietly(server: uvicorn.Server) -> None:
    # uvicorn exits the process on a failed start-up; in a thread, `running` reports it instead.
    try:
        server.run()
    except SystemExit:
        return
