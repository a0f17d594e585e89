"""An asyncio HTTP fault proxy for tests: it sits between the gateway and an upstream on loopback and, per
request, forwards it untouched or injects one network fault drawn from a seeded RNG.

Faults: `latency` (forwards after a delay), `reset` (closes the client's connection with a TCP RST before any
answer), `blackhole` (reads the request and never answers), `drip` (forwards the answer a byte at a time) and
`cut` (forwards the answer's head, then closes before its body). Each request is read whole (head and
`Content-Length` body) and forwarded on a fresh upstream connection with `Connection: close`, so a fault hits
exactly one request and the gateway's pooled connections never carry one fault into the next request.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

FAULTS: Final = ("latency", "reset", "blackhole", "drip", "cut")
HEAD_END: Final = b"\r\n\r\n"
MAX_HEAD: Final = 64 * 1024


class FaultProxy:
    """`with FaultProxy(upstream_url, rate=0.2) as url:` — `url` replaces the upstream's base URL (same path).

    A seeded `rate` of the requests get a fault, taking `faults` in turn; `counts` says what each request got
    ("ok" or a fault name)."""

    def __init__(
        self,
        upstream: str,
        rate: float,
        faults: Sequence[str] = FAULTS,
        seed: int = 0,
        latency_seconds: float = 0.2,
        drip_seconds: float = 0.05,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; use some of {FAULTS}")
        parts = urlsplit(upstream)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._path = parts.path
        self.rate = rate
        """Share of requests that get a fault; a test may change it while the proxy runs."""
        self._faults = tuple(faults)
        self._rng = random.Random(seed)
        self._next = 0
        self._latency = latency_seconds
        self._drip = drip_seconds
        self.counts: Counter[str] = Counter()
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._open: set[asyncio.StreamWriter] = set()
        """Every connection still open (clients' and upstreams'), closed at the latest when the proxy stops."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start within 10 s")
        return self.url

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{self._path}"
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for writer in list(self._open):
                writer.close()

    def _draw(self) -> str:
        """`ok`, or the next fault in turn (so a run with as many faults as kinds sees every kind)."""
        if self._rng.random() >= self.rate:
            return "ok"
        self._next += 1
        return self._faults[(self._next - 1) % len(self._faults)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                fault = self._draw()
                self.counts[fault] += 1
                if not await self._answer(fault, request, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._open.discard(writer)
            if not writer.is_closing():
                writer.close()

    async def _answer(
        self, fault: str, request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request with `fault`; False when the client's connection is done."""
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if fault == "blackhole":
            await reader.read()  # until the client gives up and closes
            return False
        if fault == "latency":
            await asyncio.sleep(self._latency)
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._open.add(up_writer)
        try:
            up_writer.write(_closing(request))
            await up_writer.drain()
            if fault == "cut":
                head = await up_reader.readuntil(HEAD_END)
                writer.write(head)
                await writer.drain()
                return False
            while chunk := await up_reader.read(65536):
                if fault == "drip":
                    for byte in chunk:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(self._drip)
                else:
                    writer.write(chunk)
                    await writer.drain()
        finally:
            self._open.discard(up_writer)
            up_writer.close()
        return False  # the upstream answered with `Connection: close`, so the answer ended with the connection


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One whole request (head and `Content-Length` body), or None when the client closed first."""
    try:
        head = await reader.readuntil(HEAD_END)
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise ConnectionError("request head too large for the fault proxy") from exc
    if len(head) > MAX_HEAD:
        raise ConnectionError("request head too large for the fault proxy")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body


def _closing(request: bytes) -> bytes:
    """`request` with `Connection: close`, so the upstream ends its answer by closing the connection."""
    head, _, body = request.partition(HEAD_END)
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + HEAD_END + body
