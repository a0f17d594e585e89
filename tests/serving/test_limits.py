"""The admission limits of a real gateway on loopback: in-flight backpressure (503 + Retry-After), body (413)
and header (431) sizes. The official openai SDK where it can send the input; httpx or a raw socket where it
cannot (chunked bodies, oversized headers, a request held open)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest
import yaml  # type: ignore[import-untyped]

from serving.config import load_config
from serving.server import running

MAX_BODY = 64 * 1024
MAX_HEADERS = 4096
RETRY_AFTER = 7
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One in-flight slot; the upstream is never reached (every request here is refused or names no model)."""
    folder = tmp_path_factory.mktemp("limits")
    config = {
        "model_list": [
            {"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": "http://127.0.0.1:9/v1"}}
        ],
        "routeiq_settings": {
            "routing": {"reference": str(folder / "no-router")},
            "telemetry": {"directory": str(folder / "traces")},
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "limits": {
                "max_in_flight": 1,
                "retry_after_seconds": RETRY_AFTER,
                "max_body_bytes": MAX_BODY,
                "max_header_bytes": MAX_HEADERS,
            },
        },
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    with running(load_config(path)) as url:
        yield url


def client(url: str) -> openai.OpenAI:
    """An SDK client whose connections close after each answer, so one left to the garbage collector holds
    no socket (an open one would surface as a ResourceWarning in whichever later test collects it)."""
    http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10)
    return openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, http_client=http)


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "unknown-model", "messages": [{"role": "user", "content": "hi"}], **extra}


def held_request(url: str) -> socket.socket:
    """A chat request whose body never comes: it stays in flight until the socket closes."""
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname, address.port))
    sock.sendall(
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{".encode()
    )
    return sock


def status(url: str) -> int:
    return httpx.post(f"{url}{CHAT}", json=chat()).status_code


def wait_until(condition: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def rejected(url: str, code: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f'routeiq_rejected_requests_total{{code="{code}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_request_beyond_max_in_flight_is_a_503_with_retry_after(gateway: str) -> None:
    assert status(gateway) == 404  # one slot free: the request reaches the endpoint (unknown model)
    before = rejected(gateway, "gateway_overloaded")
    with held_request(gateway):
        wait_until(lambda: status(gateway) == 503, "the held request fills the only slot")
        with pytest.raises(openai.InternalServerError) as caught:
            client(gateway).chat.completions.create(**chat())
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == str(RETRY_AFTER)
        assert caught.value.code == "gateway_overloaded"
        assert "max_in_flight" in caught.value.message
        # Health and metrics stay outside the limit, so probes and scrapes answer under load.
        assert httpx.get(f"{gateway}/_health/live").status_code == 200
        assert rejected(gateway, "gateway_overloaded") >= before + 2
    wait_until(lambda: status(gateway) == 404, "the slot is free again once the client leaves")


def test_a_body_over_max_body_bytes_is_a_413(gateway: str) -> None:
    big = "x" * (MAX_BODY + 1)
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway).chat.completions.create(model="m", messages=[{"role": "user", "content": big}])
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"
    assert str(MAX_BODY) in caught.value.message


def test_a_chunked_body_is_counted_as_it_arrives(gateway: str) -> None:
    def body(size: int) -> Iterator[bytes]:
        yield b'{"model": "unknown-model", "messages": [{"role": "user", "content": "'
        for _ in range(size // 1024):
            yield b"x" * 1024
        yield b'"}]}'

    over = httpx.post(f"{gateway}{CHAT}", content=body(MAX_BODY + 4096), headers={"content-type": "application/json"})
    assert over.request.headers.get("transfer-encoding") == "chunked"
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "request_too_large"
    under = httpx.post(f"{gateway}{CHAT}", content=body(MAX_BODY // 2), headers={"content-type": "application/json"})
    assert under.status_code == 404  # read whole and parsed: the endpoint named the unknown model


def test_headers_over_max_header_bytes_are_a_431(gateway: str) -> None:
    over = httpx.post(f"{gateway}{CHAT}", json=chat(), headers={"x-padding": "p" * MAX_HEADERS})
    assert over.status_code == 431
    assert over.json()["error"]["code"] == "request_headers_too_large"
    assert "max_header_bytes" in over.json()["error"]["message"]
    under = httpx.post(f"{gateway}{CHAT}", json=chat(), headers={"x-padding": "p" * (MAX_HEADERS // 2)})
    assert under.status_code == 404
    assert rejected(gateway, "request_headers_too_large") >= 1
