"""Running the replay app under uvicorn: blocking (`serve`) or in a background thread (`running`).

Nothing starts at import time; `serve` blocks until stopped, `running` stops its server on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from serving.background_server import ServerStartError, running_server
from serving.replay.app import SERVED_ROUTES, create_app
from serving.replay.exceptions import ReplaySetupError
from serving.replay.settings import ReplaySettings
from serving.replay.state import ReplayState, build_state
from serving.startup import bound_url, check_port, listen, run_until_stopped

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
"""Also the defaults of `routeiq replay-provider --host/--port` (tests/pipelines/test_cli_replay_defaults.py)."""


def server_config(
    settings: ReplaySettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, state: ReplayState | None = None
) -> uvicorn.Config:
    """The uvicorn config: no access log, since the replay server sits under latency benchmarks."""
    return uvicorn.Config(
        create_app(settings, state), host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )


def serve(
    settings: ReplaySettings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); once listening, pass `announce` one line: where, and what.

    The outcomes are read and the port bound before uvicorn starts, so a bad file raises `ReplaySetupError`
    and a taken port (or one outside 0..65535) raises `serving.startup.ListenError`, here."""
    check_port(port)  # before reading the outcomes, which takes seconds for a large file
    state = build_state(settings)
    sock = listen(host, port)
    line = start_line(state, f"{bound_url(sock)}/v1")
    run_until_stopped(
        server_config(settings, host, port, state), sock, on_started=(lambda: announce(line)) if announce else None
    )


def start_line(state: ReplayState, base_url: str) -> str:
    """What `routeiq replay-provider` prints when it listens: the base URL, the models and prompts it serves."""
    prompts = len({prompt_id for _, prompt_id in state.index.records})
    models = ", ".join(state.index.models)
    return (
        f"replay provider listening on {base_url}: {len(state.index.models)} models ({models}), {prompts} prompts "
        f"from {state.settings.outcomes}; {SERVED_ROUTES}"
    )


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
