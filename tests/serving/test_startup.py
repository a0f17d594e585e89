"""`serving.startup`: the port is checked and bound before a server starts; a failed start-up is raised, not logged."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from fastapi import FastAPI

from serving.startup import ListenError, bound_url, listen, run_until_stopped


@pytest.mark.parametrize("port", [-1, 65536, 99999])
def test_a_port_outside_the_range_is_refused_not_wrapped(port: int) -> None:
    with pytest.raises(ListenError, match=r"outside 0\.\.65535"):
        listen("127.0.0.1", port)


def test_a_taken_port_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"port {port} on 127.0.0.1 is already in use"):
            listen("127.0.0.1", port)


def test_port_zero_takes_a_free_port_and_the_url_names_it() -> None:
    with listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        assert port > 0 and bound_url(sock) == f"http://127.0.0.1:{port}"


def test_an_exception_of_the_start_up_is_raised_without_a_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise ValueError("telemetry.directory /nowhere is not writable; pick a writable directory")
        yield  # pragma: no cover

    started: list[bool] = []
    config = uvicorn.Config(FastAPI(lifespan=lifespan), log_level="warning", lifespan="on")
    sock = listen("127.0.0.1", 0)
    with pytest.raises(ValueError, match="is not writable"):
        run_until_stopped(config, sock, on_started=lambda: started.append(True))
    assert not started and sock.fileno() == -1
    assert "Traceback" not in capfd.readouterr().err
