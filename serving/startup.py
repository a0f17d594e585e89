"""Starting a server from the command line: bind its port first, and raise a failed start-up to the caller.

`listen` refuses a port outside 0..65535 and turns a taken port or an unknown address into `ListenError`;
`run_until_stopped` runs uvicorn on that socket and raises an exception of the app's start-up (its lifespan)
instead of letting uvicorn log it as a traceback. Nothing here runs at import time.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

PORT_MAX = 65535
BACKLOG = 2048
"""uvicorn's default backlog."""

ASGIApp = Callable[..., Any]


class ListenError(OSError):
    """The server cannot listen where it was asked to; the message says what to change."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening; port 0 picks a free port (read it from the socket)."""
    check_port(port)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host!r}: {exc.strerror}; pass an address such as 127.0.0.1") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(_bind_failure(host, port, exc)) from exc
    return sock


def check_port(port: int) -> None:
    """Refuse a port outside 0..65535 (the OS would silently take it modulo 65536)."""
    if not 0 <= port <= PORT_MAX:
        raise ListenError(f"port {port} is outside 0..{PORT_MAX}; pick a port in 1..{PORT_MAX} (0: any free port)")


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; stop the process listening there or pick another port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; listen on 127.0.0.1, 0.0.0.0 or one of its addresses"
    if exc.errno == errno.EACCES:
        return f"listening on port {port} needs privileges; pick a port above 1023"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def bound_url(sock: socket.socket) -> str:
    """`http://host:port` of a listening socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def run_until_stopped(
    config: uvicorn.Config, sock: socket.socket, on_started: Callable[[], None] | None = None
) -> None:
    """Serve `config.app` on `sock` until interrupted; `on_started` runs once the app's start-up is complete.

    An exception raised by the app's start-up is raised here (uvicorn would log its traceback and exit 3).
    """
    if isinstance(config.app, str):
        raise TypeError("run_until_stopped needs the app object, not an import string")
    guard = StartupGuard(config.app, on_started)
    config.app = guard
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except SystemExit:
        if guard.error is None:
            raise
        raise guard.error from None
    finally:
        sock.close()


class StartupGuard:
    """ASGI wrapper that keeps a start-up exception (for `run_until_stopped` to raise) instead of its traceback."""

    def __init__(self, app: ASGIApp, on_started: Callable[[], None] | None) -> None:
        self.app = app
        self.on_started = on_started
        self.error: Exception | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        started = False

        async def report(message: Any) -> None:
            nonlocal started
            if message["type"] == "lifespan.startup.failed":
                message = {"type": message["type"], "message": ""}  # the caller raises the exception itself
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                started = True
                if self.on_started is not None:
                    self.on_started()

        try:
            await self.app(scope, receive, report)
        except Exception as exc:
            if started:
                raise
            self.error = exc
