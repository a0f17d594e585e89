"""An httpx client for the LiteLLM path whose connections go only where the SSRF guard allows, and which never
follows redirects: LiteLLM's own OpenAI client resolves names itself and follows redirects.

The guard sits in httpcore's network backend: each new connection's host is resolved and checked by
`GuardedResolver`, and the socket is opened to a checked address, so what is checked is what is called. TLS
still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Final

import httpcore
import httpx

from serving.security.ssrf import Allowlist, BlockedAddressError, GuardedResolver

MAX_CONNECTIONS: Final = 1000
KEEPALIVE_CONNECTIONS: Final = 100
DEFAULT_TIMEOUT: Final = httpx.Timeout(600.0, connect=10.0)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to addresses the guard accepted for the host asked for."""

    def __init__(self, resolver: GuardedResolver, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A stream to the first checked address of `host` that accepts; refused hosts raise `ConnectError`."""
        try:
            results = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        except BlockedAddressError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        error: Exception = httpcore.ConnectError(f"{host!r} resolved to no address")
        for result in results:
            try:
                return await self._inner.connect_tcp(result["host"], port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not upstreams; use an https api_base")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(allowlist: Allowlist, resolver: GuardedResolver | None = None) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` that checks every connection with the guard and follows no redirect (a 3xx is
    returned as is, which the OpenAI SDK raises as an error)."""
    transport = httpx.AsyncHTTPTransport()
    # httpx takes no network backend, so its pool is replaced by the same pool over the guarded backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
        network_backend=GuardedBackend(resolver or GuardedResolver(allowlist)),
    )
    # The OpenAI SDK sets each request's timeout (LiteLLM's `timeout`); this is only the default.
    return httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=DEFAULT_TIMEOUT)
