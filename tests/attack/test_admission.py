"""The model routes admit from the header block before reading a body: an unknown key is a 401 and a key over
its rpm a 429 while the body has not arrived (so trickling bodies cost them nothing); `auto` routes only among the
deployments a key may use; and every refusal is a span and a counted answer, like any other."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.config import parse_config
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans
from tests.attack.conftest import AUTH, CHAT, MASTER_KEY, Upstream, access_section, chat_body, gateway_config

ANSWER_WITHIN = 10.0
"""Seconds a refusal from the headers may take; the body never comes, so a gateway waiting for it fails this."""


@pytest.fixture
def gateway(upstream: Upstream, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with running(gateway_config(upstream.url, tmp_path, {"max_in_flight": 3})) as url:
        yield url, tmp_path


def new_key(url: str, **fields: Any) -> str:
    answer = httpx.post(f"{url}/admin/keys", json=fields, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["key"]
    return key


def head_only(url: str, key: str | None, length: int = 10_000) -> tuple[socket.socket, bytes]:
    """Send a chat request's head announcing `length` body bytes, and none of them; the answer's first bytes."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {length}\r\n\r\n"
    )
    conn.sendall(head.encode())
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        pass
    return conn, answer


def test_an_unknown_key_is_refused_before_its_body(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    for key in ("sk-riq-0000000000000000-wrong", None, "not-even-a-key"):
        conn, answer = head_only(url, key)
        conn.close()
        assert answer.startswith(b"HTTP/1.1 401"), answer


def test_a_key_over_its_rpm_is_refused_before_its_body(gateway: tuple[str, Path], upstream: Upstream) -> None:
    url, _ = gateway
    key = new_key(url, rpm=1)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        assert client.post(CHAT, json=chat_body()).status_code == 200
    held: list[socket.socket] = []
    try:
        for _ in range(3):  # as many as max_in_flight: trickling connections of this key must not fill it
            conn, answer = head_only(url, key)
            held.append(conn)
            assert answer.startswith(b"HTTP/1.1 429"), answer
            assert b"rate_limit_error" in answer
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            assert client.post(CHAT, json=chat_body()).status_code == 200  # everyone else is still served
    finally:
        for conn in held:
            conn.close()


def test_auto_routes_only_among_the_models_a_key_may_use(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    narrow = new_key(url, allowed_models=["auto", "alpha"])
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {narrow}"}, timeout=30) as client:
        served = Counter(client.post(CHAT, json=chat_body("auto")).headers["x-routeiq-model"] for _ in range(24))
    assert served == {"alpha": 24}
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        everyone = {client.post(CHAT, json=chat_body("auto")).headers["x-routeiq-model"] for _ in range(24)}
    assert everyone == {"alpha", "beta"}  # the fallback's uniform draw, for a key that may use both
    only_auto = new_key(url, allowed_models=["auto"])
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {only_auto}"}, timeout=30) as client:
        refused = client.post(CHAT, json=chat_body("auto"))
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "permission_denied" and "may use none of them" in error["message"]


def test_a_policy_rule_denying_a_model_keeps_auto_off_it(upstream: Upstream, tmp_path: Path) -> None:
    policy = {"rules": [{"name": "no-beta-for-red", "effect": "deny", "teams": ["red"], "models": ["beta"]}]}
    with running(gateway_config(upstream.url, tmp_path, policy=policy)) as url:
        red = new_key(url, team="red")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {red}"}, timeout=30) as client:
            assert {client.post(CHAT, json=chat_body("auto")).headers["x-routeiq-model"] for _ in range(20)} == {
                "alpha"
            }
            assert client.post(CHAT, json=chat_body("beta")).status_code == 403


def test_a_failing_model_never_falls_back_to_one_the_key_may_not_use(upstream: Upstream, tmp_path: Path) -> None:
    """`alpha` is down and falls back to `beta`: a key allowed only `alpha` gets the failure, not `beta`'s answer
    (the fallback chain used to ignore the key's permissions)."""
    bases = {"alpha": "http://127.0.0.1:9/v1", "beta": upstream.url}  # nothing listens on the discard port
    config = parse_config(
        {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": base}}
                for m, base in bases.items()
            ],
            "general_settings": {"master_key": MASTER_KEY},
            "routeiq_settings": {
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(tmp_path / "traces")},
                "access": access_section(tmp_path),
                "routing": {"reference": str(tmp_path / "no-router")},
                "failover": {"fallbacks": {"alpha": ["beta"]}, "breaker": {"enabled": False}},
            },
        }
    )
    with running(config) as url:
        narrow = new_key(url, allowed_models=["alpha"])
        wide = new_key(url, allowed_models=["alpha", "beta"])
        refused = httpx.post(f"{url}{CHAT}", json=chat_body(), headers={"Authorization": f"Bearer {narrow}"})
        for stream in (False, True):
            fell_back = httpx.post(
                f"{url}{CHAT}", json=chat_body(stream=stream), headers={"Authorization": f"Bearer {wide}"}, timeout=30
            )
            assert fell_back.status_code == 200 and fell_back.headers["x-routeiq-model"] == "beta", fell_back.text
        streamed = httpx.post(
            f"{url}{CHAT}", json=chat_body(stream=True), headers={"Authorization": f"Bearer {narrow}"}, timeout=30
        )
    assert refused.status_code == 502 and "x-routeiq-model" not in refused.headers, refused.text
    assert streamed.status_code == 502, streamed.text


def test_every_refusal_is_a_span_and_a_counted_answer(upstream: Upstream, tmp_path: Path) -> None:
    with running(gateway_config(upstream.url, tmp_path)) as url:
        created = httpx.post(f"{url}/admin/keys", json={"rpm": 1, "allowed_models": ["alpha"]}, headers=AUTH).json()
        limited, limited_id = created["key"], created["id"]
        with httpx.Client(base_url=url, timeout=30) as client:
            statuses = [
                client.post(CHAT, json=chat_body(), headers={"Authorization": "Bearer wrong"}).status_code,
                client.post(CHAT, json=chat_body("beta"), headers={"Authorization": f"Bearer {limited}"}).status_code,
                client.post(CHAT, json=chat_body(), headers={"Authorization": f"Bearer {limited}"}).status_code,
                client.post(CHAT, json={"model": "alpha"}, headers=AUTH).status_code,
                client.post(CHAT, json=chat_body("x" * 300), headers=AUTH).status_code,
            ]
            metrics = client.get("/metrics").text
            feedback = client.post("/v1/feedback", json={"id": "x", "score": 2}, headers=AUTH).status_code
            admin = client.get("/admin/keys", headers={"Authorization": "Bearer wrong"}).status_code
            metrics_after = client.get("/metrics").text
    # 401 unknown key; 403 a model the key may not use (counted against rpm: admission comes first); 429 over rpm;
    # 400 bad body; 400 a model name over 256 characters.
    assert statuses == [401, 403, 429, 400, 400]
    assert (feedback, admin) == (400, 401)
    for status, count in ((401, 1), (403, 1), (429, 1), (400, 2)):
        line = f'routeiq_requests_total{{endpoint="chat_completions",model="",status="{status}"}} {count:.1f}'
        assert line in metrics, line
        assert f'route="/v1/chat/completions",status="{status}"' in metrics
    assert 'code="invalid_request_error",route="/v1/feedback",status="400"' in metrics_after
    assert 'code="invalid_api_key",route="/admin/keys",status="401"' in metrics_after
    spans = [s for s in read_spans(tmp_path / "traces") if s.name == a.CHAT_SPAN_NAME]
    assert Counter(s.attributes[a.HTTP_STATUS] for s in spans) == {401: 1, 403: 1, 429: 1, 400: 2}
    for span in spans:
        status = span.attributes[a.HTTP_STATUS]
        if status in (400, 401):  # the master key; nobody (the key was refused)
            assert span.attributes.get(a.KEY_ID) == ("master" if status == 400 else None)
        assert str(span.attributes.get(a.ERROR_TYPE, "")) != ""
        assert len(str(span.attributes.get(a.REQUEST_MODEL, ""))) <= 256
    assert {s.attributes[a.KEY_ID] for s in spans if s.attributes[a.HTTP_STATUS] in (403, 429)} == {limited_id}
