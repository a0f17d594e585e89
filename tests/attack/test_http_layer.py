"""The HTTP layer under raw sockets: trailers of a chunked body are never headers (no credentials, no routing
controls, bounded by max_header_bytes), a slow head or body is a 408 that closes the connection, one key's
trickled requests cannot fill max_in_flight for the others, and bytes that are not HTTP get an OpenAI-shaped 400."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.server import running
from tests.attack.conftest import AUTH, CHAT, MASTER_KEY, Upstream, chat_body, gateway_config

WAIT = 20.0
"""Generous bound (seconds) on any answer; deadlines in these configs are 1 s."""
MAX_HEADERS = 8 * 1024
LIMITS = {"max_header_bytes": MAX_HEADERS, "header_read_seconds": 1, "body_read_seconds": 1}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool
    """The gateway closed the connection after the answer."""

    def error(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/json", self
        found: dict[str, Any] = json.loads(self.body)["error"]
        return found


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(gateway_config(upstream.url, tmp_path_factory.mktemp("http"), LIMITS)) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=WAIT)


def read_answer(conn: socket.socket) -> Answer:
    """One response (with a Content-Length) and whether the connection was closed after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = conn.recv(65536)
        assert chunk, "connection closed inside the answer"
        body += chunk
    if headers.get("connection") != "close":
        return Answer(int(lines[0].split()[1]), headers, body, closed=False)
    try:
        closed = conn.recv(1) == b""
    except ConnectionResetError:
        closed = True  # closed with bytes of ours unread
    except TimeoutError:
        closed = False
    return Answer(int(lines[0].split()[1]), headers, body, closed)


def exchange(url: str, raw: bytes) -> Answer:
    with connect(url) as conn:
        conn.sendall(raw)
        return read_answer(conn)


def chunked(path: str, body: bytes, trailers: str, head: str = "") -> bytes:
    """A chunked POST of `body` whose header block is `head` and whose trailer fields are `trailers`."""
    return (
        (
            f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            f"{head}\r\n{len(body):x}\r\n"
        ).encode()
        + body
        + f"\r\n0\r\n{trailers}\r\n".encode()
    )


TRAILER_AUTH = f"Authorization: Bearer {MASTER_KEY}\r\n"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, chat_body()),
        ("/v1/feedback", {"id": "chatcmpl-unknown", "score": 1.0}),
        ("/admin/keys", {"team": "trailer-made"}),
    ],
    ids=["chat", "feedback", "admin-keys"],
)
def test_a_trailer_authorization_never_authenticates(gateway: str, path: str, body: dict[str, Any]) -> None:
    answer = exchange(gateway, chunked(path, json.dumps(body).encode(), TRAILER_AUTH))
    assert answer.status == 401, answer
    assert answer.error()["code"] == "invalid_api_key"


def test_a_trailer_cost_weight_is_ignored(gateway: str) -> None:
    # Honoured, this unparsable weight would be a 400 naming x-routeiq-cost-weight.
    head = f"Authorization: Bearer {MASTER_KEY}\r\n"
    raw = chunked(CHAT, json.dumps(chat_body("auto")).encode(), "x-routeiq-cost-weight: not-a-number\r\n", head)
    answer = exchange(gateway, raw)
    assert answer.status == 200, answer


def test_a_huge_trailer_is_a_431_before_it_ends(gateway: str) -> None:
    head = f"Authorization: Bearer {MASTER_KEY}\r\n"
    start = chunked(CHAT, json.dumps(chat_body()).encode(), "", head).removesuffix(b"\r\n") + b"X-Big: "
    piece = b"a" * 65536
    sent = 0
    with connect(gateway) as conn:
        conn.sendall(start)
        while sent < 64 * 1024 * 1024 and not select.select([conn], [], [], 0.02)[0]:
            conn.sendall(piece)
            sent += len(piece)
        answer = read_answer(conn)
    assert sent < 64 * 1024 * 1024, "the gateway read a 64 MB trailer without answering"
    assert answer.status == 431, answer
    assert answer.error()["code"] == "request_headers_too_large"
    assert answer.closed


def test_a_huge_header_is_refused_before_it_ends(gateway: str) -> None:
    piece = b"a" * 65536
    sent = 0
    with connect(gateway) as conn:
        conn.sendall(f"POST {CHAT} HTTP/1.1\r\nHost: gw\r\nX-Big: ".encode())
        while sent < 64 * 1024 * 1024 and not select.select([conn], [], [], 0.02)[0]:
            conn.sendall(piece)
            sent += len(piece)
        answer = read_answer(conn)
    assert sent < 64 * 1024 * 1024
    assert answer.status == 431, answer
    assert answer.closed


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nNo colon here\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    ids=["not-http", "header-without-colon", "bad-chunk-size", "two-lengths"],
)
def test_bytes_that_are_not_http_are_a_json_400(gateway: str, raw: bytes) -> None:
    answer = exchange(gateway, raw)
    assert answer.status == 400, answer
    error = answer.error()
    assert error["code"] == "invalid_http_request"
    assert error["type"] == "invalid_request_error"
    assert answer.headers["connection"] == "close"
    assert answer.closed


def test_a_slow_head_is_a_408_and_closed(gateway: str) -> None:
    with connect(gateway) as conn:
        conn.sendall(f"POST {CHAT} HTTP/1.1\r\nHost: gw\r\n{TRAILER_AUTH}".encode())
        answer = read_answer(conn)
    assert answer.status == 408, answer
    assert answer.error()["code"] == "request_timeout"
    assert answer.closed


def test_a_slow_body_is_a_408_and_closed(gateway: str) -> None:
    head = f"POST {CHAT} HTTP/1.1\r\nHost: gw\r\n{TRAILER_AUTH}Content-Length: 1000\r\n\r\n"
    with connect(gateway) as conn:
        conn.sendall(head.encode() + b'{"model": ')
        answer = read_answer(conn)
    assert answer.status == 408, answer
    assert answer.error()["code"] == "request_timeout"
    assert answer.headers["connection"] == "close"
    assert answer.closed


def test_one_key_cannot_fill_max_in_flight(upstream: Upstream, tmp_path: Path) -> None:
    limits = {"max_in_flight": 4, "max_in_flight_per_key": 2, "body_read_seconds": 60}
    with running(gateway_config(upstream.url, tmp_path, limits)) as url:
        other = httpx.post(f"{url}/admin/keys", json={"team": "other"}, headers=AUTH, timeout=WAIT).json()["key"]
        head = f"POST {CHAT} HTTP/1.1\r\nHost: gw\r\n{TRAILER_AUTH}Content-Length: 1000\r\n\r\n".encode()
        held = [connect(url) for _ in range(4)]  # as many as max_in_flight, bodies never sent
        try:
            for conn in held:
                conn.sendall(head)
            answers = answered(held, 2)
            assert [a.status for a in answers] == [429, 429], answers
            assert all(a.error()["code"] == "too_many_in_flight" and "retry-after" in a.headers for a in answers)
            served = httpx.post(
                f"{url}{CHAT}", json=chat_body(), headers={"Authorization": f"Bearer {other}"}, timeout=WAIT
            )
            assert served.status_code == 200, served.text
            # The two held requests show on /metrics while they wait for their bodies.
            assert settled_gauges(url, 2) == {"requests": 2, "keys": 1, "busiest_key": 2}
        finally:
            for conn in held:
                conn.close()
        assert settled_gauges(url, 0) == {"requests": 0, "keys": 0, "busiest_key": 0}


def in_flight_gauges(url: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", timeout=WAIT).text
    gauges = {
        "routeiq_in_flight": "requests",
        "routeiq_in_flight_keys": "keys",
        "routeiq_in_flight_busiest_key": "busiest_key",
    }
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name in gauges:
            found[gauges[family.name]] = int(family.samples[0].value)
    return found


def settled_gauges(url: str, requests: int) -> dict[str, int]:
    """The in-flight gauges once `requests` are in flight (a refused request leaves just after its answer)."""
    deadline = time.monotonic() + WAIT
    while True:
        gauges = in_flight_gauges(url)
        if gauges.get("requests") == requests or time.monotonic() > deadline:
            return gauges
        time.sleep(0.1)


def answered(conns: list[socket.socket], count: int) -> list[Answer]:
    """The answers of the first `count` connections to answer (waiting at most WAIT seconds)."""
    found: list[Answer] = []
    waiting = list(conns)
    deadline = time.monotonic() + WAIT
    while len(found) < count and time.monotonic() < deadline:
        ready = select.select(waiting, [], [], 0.1)[0]
        for conn in ready:
            found.append(read_answer(conn))
            waiting.remove(conn)
    return found
