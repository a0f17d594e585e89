"""Resilience against a real, slow upstream on loopback: deadlines (504 before the first byte, an error event
after it), a client that leaves mid-stream (the upstream call is cancelled, the span keeps the partial usage)
or mid-body (no traceback), and a graceful drain of `routeiq serve` on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import orjson
import pytest
import yaml  # type: ignore[import-untyped]

from serving.config import load_config
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans

GAP = 0.1
"""Seconds between the slow upstream's events."""
FIRST_BYTE, CHUNK_GAP, TOTAL = 0.5, 0.5, 1.5
SCENARIOS = ("steady", "late", "stall", "dribble")


class SlowUpstream:
    """An OpenAI-compatible `/v1/chat/completions` on loopback whose upstream model name picks its behaviour:
    `steady` streams `events` events GAP apart; `late` sends its head but no byte for 3 s; `stall` sends two
    events then nothing for 3 s; `dribble` (non-streamed) sends its body a byte every GAP. `cut` counts
    streams whose client closed the connection before the last event; `finished` those sent whole."""

    def __init__(self, events: int = 8) -> None:
        self.events = events
        self.cut: list[str] = []
        self.finished: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def __enter__(self) -> SlowUpstream:
        self._thread.start()
        assert self._ready.wait(10), "the slow upstream did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.lower().splitlines() if line.startswith(b"content-length")
        )
        body = orjson.loads(await reader.readexactly(length))
        closed = asyncio.ensure_future(reader.read())  # b"" once the gateway closes the connection
        try:
            if body.get("stream"):
                await self._stream(body["model"], writer, closed)
            else:
                await self._dribble(body["model"], writer)
        except ConnectionError:
            self.cut.append(body["model"])
        finally:
            closed.cancel()
            writer.close()

    async def _stream(self, model: str, writer: asyncio.StreamWriter, closed: asyncio.Future[bytes]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        await writer.drain()
        if model == "late":
            await asyncio.sleep(3)
        for index in range(self.events):
            await asyncio.wait([closed], timeout=GAP)
            if closed.done():
                self.cut.append(model)
                return
            writer.write(event(model, {"content": f"word{index} "}, None))
            await writer.drain()
            if model == "stall" and index == 1:
                await asyncio.sleep(3)
        writer.write(event(model, {}, "stop") + usage_event(model) + b"data: [DONE]\n\n")
        await writer.drain()
        self.finished.append(model)

    async def _dribble(self, model: str, writer: asyncio.StreamWriter) -> None:
        content = orjson.dumps(
            {
                "id": "c1",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            }
        )
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(content)}\r\n\r\n".encode()
        )
        for byte in content:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(GAP)
        self.finished.append(model)


def event(model: str, delta: dict[str, str], finish: str | None) -> bytes:
    chunk = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def usage_event(model: str) -> bytes:
    chunk = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12},
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def gateway_config(folder: Path, upstream: str, limits: dict[str, Any], fast_path: bool = True) -> Path:
    config = {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/{name}",
                    "api_base": upstream,
                    "input_cost_per_token": 1e-6,
                    "output_cost_per_token": 2e-6,
                },
            }
            for name in SCENARIOS
        ],
        "routeiq_settings": {
            "routing": {"reference": str(folder / "no-router")},
            "telemetry": {"directory": str(folder / "traces"), "export_interval_seconds": 0.05},
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "limits": limits,
            "fast_path": fast_path,
        },
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[SlowUpstream]:
    with SlowUpstream() as server:
        yield server


@pytest.fixture(scope="module", params=["direct", "litellm"])
def path(request: pytest.FixtureRequest) -> str:
    """Every deadline and disconnect test runs on both call paths: aiohttp direct, and through LiteLLM."""
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, path: str) -> Path:
    return tmp_path_factory.mktemp(f"resilience-{path}")


@pytest.fixture(scope="module")
def gateway(folder: Path, upstream: SlowUpstream, path: str) -> Iterator[str]:
    limits = {"first_byte_seconds": FIRST_BYTE, "chunk_gap_seconds": CHUNK_GAP, "total_seconds": TOTAL}
    with running(load_config(gateway_config(folder, upstream.url, limits, fast_path=path == "direct"))) as url:
        # LiteLLM's first call sets itself up for longer than the 0.5 s first-byte deadline on a busy machine.
        wait_for(lambda: _answers(url), "a first whole stream", timeout=30)
        yield url


def _answers(url: str) -> bool:
    try:
        stream = client(url).chat.completions.create(model="steady", messages=messages(), stream=True)
        return bool("".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))
    except openai.APIError:
        return False


def client(url: str) -> openai.OpenAI:
    """An SDK client whose connections close after each answer, so one left to the garbage collector holds
    no socket (an open one would surface as a ResourceWarning in whichever later test collects it)."""
    http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=20)
    return openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, http_client=http)


def messages() -> list[Any]:
    return [{"role": "user", "content": "hello"}]


def wait_for(find: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def span_where(folder: Path, error_type: str, model: str = "") -> Any:
    """The gateway span with `error_type` (and chosen `model`), once the exporter has written it."""

    def find() -> Any:
        for span in read_spans(folder / "traces"):
            attributes = span.attributes
            if attributes.get(a.ERROR_TYPE) == error_type and (not model or attributes.get(a.CHOSEN_MODEL) == model):
                return span
        return None

    return wait_for(find, f"a span with error type {error_type}")


def test_the_steady_stream_passes_whole(gateway: str, upstream: SlowUpstream) -> None:
    stream = client(gateway).chat.completions.create(model="steady", messages=messages(), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "".join(f"word{i} " for i in range(upstream.events))


def test_no_first_byte_in_time_is_a_504(gateway: str) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway).chat.completions.create(model="late", messages=messages(), stream=True)
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_deadline"
    assert "first_byte_seconds" in caught.value.message
    assert time.monotonic() - started < FIRST_BYTE + 1.0


def test_a_stalled_stream_ends_with_an_error_event(gateway: str, folder: Path) -> None:
    stream = client(gateway).chat.completions.create(model="stall", messages=messages(), stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["word0 ", "word1 "]
    assert "chunk_gap_seconds" in caught.value.message
    span = span_where(folder, "upstream_deadline", "stall")
    assert span.attributes[a.OUTPUT_TOKENS] > 0  # what was streamed is still accounted


def test_a_slow_non_streamed_answer_misses_the_total_deadline(gateway: str) -> None:
    # Every byte comes well within the per-read timeout; only the total deadline catches this.
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway).chat.completions.create(model="dribble", messages=messages())
    assert caught.value.status_code == 504
    assert "total_seconds" in caught.value.message
    assert time.monotonic() - started < TOTAL + 1.0


def test_a_client_leaving_mid_stream_cancels_the_upstream_and_keeps_the_usage(
    gateway: str, upstream: SlowUpstream, folder: Path
) -> None:
    upstream.cut.clear()  # the other call path's run left its own mark
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST", f"{gateway}/v1/chat/completions", json={"model": "steady", "messages": messages(), "stream": True}
        ) as response,
    ):
        seen: list[str] = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(line)
            if len(seen) == 2:
                break
    assert len(seen) == 2
    wait_for(lambda: "steady" in upstream.cut, "the upstream to see its connection closed mid-stream")
    span = span_where(folder, "client_disconnected", "steady")
    assert span.attributes[a.HTTP_STATUS] == 499
    assert span.attributes[a.OUTPUT_TOKENS] > 0
    assert span.attributes[a.COST_USD] > 0


def test_a_client_leaving_before_a_whole_answer_cancels_the_upstream_call(
    gateway: str, upstream: SlowUpstream, folder: Path
) -> None:
    """The dribbling upstream would take far longer than the client waits: the gateway must cancel it when the
    client leaves (span 499), not keep calling until its own total deadline (which would record a 504)."""
    before = {span.span_id for span in spans_in(folder)}
    upstream.cut.clear()
    body = {"model": "dribble", "messages": messages()}
    with httpx.Client(timeout=0.4) as http, pytest.raises(httpx.ReadTimeout):
        http.post(f"{gateway}/v1/chat/completions", json=body)
    span = wait_for(
        lambda: next((s for s in spans_in(folder) if s.span_id not in before and s.name == a.CHAT_SPAN_NAME), None),
        "the request's span",
    )
    assert span.attributes[a.ERROR_TYPE] == "client_disconnected" and span.attributes[a.HTTP_STATUS] == 499
    wait_for(lambda: "dribble" in upstream.cut, "the upstream to see its connection closed")


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/embeddings", "/v1/feedback", "/admin/keys"])
def test_a_client_leaving_mid_body_is_recorded_without_a_traceback(
    gateway: str, folder: Path, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    address = urlsplit(gateway)
    before = {span.span_id for span in spans_in(folder)}
    head = f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n".encode()
    with caplog.at_level(logging.ERROR), socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(head + b'{"model"')
        time.sleep(0.2)
    names = {"/v1/chat/completions": a.CHAT_SPAN_NAME, "/v1/embeddings": a.EMBEDDINGS_SPAN_NAME}
    if route in names:  # model calls keep a span of the attempt
        span = wait_for(
            lambda: next(
                (
                    s
                    for s in spans_in(folder)
                    if s.span_id not in before
                    and s.name == names[route]
                    and s.attributes.get(a.ERROR_TYPE) == "client_disconnected"
                ),
                None,
            ),
            "a client_disconnected span",
        )
        assert span.attributes[a.HTTP_STATUS] == 499
    time.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a client leaving must not log an error"


def spans_in(folder: Path) -> list[Any]:
    """The gateway's spans so far (none before its first export created the folder)."""
    return read_spans(folder / "traces") if (folder / "traces").exists() else []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, SlowUpstream]]:
    """`routeiq serve` in its own process (default limits) in front of a 2-second steady stream."""
    with SlowUpstream(events=20) as upstream:
        port = free_port()
        config = gateway_config(tmp_path, upstream.url, {})
        command = [sys.executable, "-m", "pipelines.cli", "serve", "--config", str(config), "--port", str(port)]
        with (tmp_path / "gateway.log").open("w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: not refused(port) and httpx.get(f"{url}/_health/live").status_code == 200, "start", 60)
            yield process, url, upstream
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def test_sigterm_drains_the_stream_in_flight_then_exits(
    served: tuple[subprocess.Popen[bytes], str, SlowUpstream],
) -> None:
    process, url, upstream = served
    received: list[str] = []
    first = threading.Event()

    def read() -> None:
        stream = client(url).chat.completions.create(model="steady", messages=messages(), stream=True)
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
            first.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert first.wait(20), "the stream did not start"
    process.send_signal(signal.SIGTERM)
    wait_for(lambda: refused(int(urlsplit(url).port or 0)), "new connections to be refused", 5)
    assert reader.is_alive(), "the stream should still be running while the listener is closed"
    reader.join(20)
    assert "".join(received) == "".join(f"word{i} " for i in range(upstream.events))
    assert process.wait(20) in (0, -signal.SIGTERM)
    assert upstream.finished == ["steady"] and not upstream.cut
