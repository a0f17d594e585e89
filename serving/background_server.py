"""Running an ASGI app under uvicorn in a background thread on loopback, for tests, the demo and benchmarks.

Nothing starts at import time; the server stops when the context exits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

START_TIMEOUT_SECONDS = 60.0


class ServerStartError(RuntimeError):
    """The server did not start; the uvicorn log above gives the cause."""


@contextmanager
def running_server(config: uvicorn.Config, name: str) -> Iterator[str]:
    """Serve `config` in a daemon thread (port 0 picks a free port); yield `http://host:port`; stop on exit."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=_run_quietly, args=(server,), name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServerStartError(
                f"{name} did not start on {config.host}:{config.port}; the log above gives the cause "
                "(a bad file or setting, or the port is taken)"
            )
        time.sleep(0.01)
    bound: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{config.host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_SECONDS)


def _run_quietly(server: uvicorn.Server) -> None:
    # uvicorn exits the process on a failed start-up; in a thread, `running_server` reports it instead.
    try:
        server.run()
    except SystemExit:
        return
