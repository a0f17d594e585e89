"""The smaller holes of the attack review: no redirect built from the Host header, no outbound call at start, a
restricted key's model list, the audit of revoking a key that does not exist, the API description behind an
option, and CORS off by default but configurable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.access.audit import SqliteAuditLog
from serving.server import running
from tests.attack.conftest import AUTH, CHAT, Upstream, chat_body, gateway_config


@pytest.fixture
def gateway(upstream: Upstream, tmp_path: Path) -> Iterator[str]:
    with running(gateway_config(upstream.url, tmp_path)) as url:
        yield url


@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/keys/"), ("POST", f"{CHAT}/"), ("GET", "/v1/models/")])
def test_a_trailing_slash_is_an_unknown_route_not_a_redirect(gateway: str, method: str, path: str) -> None:
    with httpx.Client(base_url=gateway, timeout=30, follow_redirects=False) as client:
        answer = client.request(method, path, headers={"Host": "evil.example"}, json=chat_body())
    assert answer.status_code == 404 and "location" not in answer.headers
    assert answer.json()["error"]["code"] == "unknown_route"


NETWORK_AUDIT = textwrap.dedent(
    """
    import ipaddress, json, os, sys
    os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    seen = []

    def hook(event, args):
        if event == "socket.getaddrinfo":
            seen.append(["resolve", str(args[0])])
        elif event == "socket.connect" and isinstance(args[1], tuple):
            seen.append(["connect", str(args[1][0])])

    sys.addaudithook(hook)
    import httpx
    from serving.server import running
    from tests.attack.conftest import AUTH, CHAT, chat_body, gateway_config
    from pathlib import Path

    config = gateway_config(sys.argv[1], Path(sys.argv[2]), fast_path=False)
    with running(config) as url:
        answer = httpx.post(url + CHAT, json=chat_body(), headers=AUTH, timeout=60)
        assert answer.status_code == 200, answer.text

    def local(host):
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"

    print(json.dumps([item for item in seen if not local(item[1])]))
    """
)


def test_the_gateway_makes_no_network_call_it_was_not_configured_for(upstream: Upstream, tmp_path: Path) -> None:
    """With LiteLLM on the call path and LITELLM_LOCAL_MODEL_COST_MAP unset, nothing but loopback is resolved or
    connected to (LiteLLM used to fetch its price map from the internet at import)."""
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    done = subprocess.run(
        [sys.executable, "-c", NETWORK_AUDIT, upstream.url, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def new_key(url: str, **fields: object) -> str:
    answer = httpx.post(f"{url}/admin/keys", json=fields, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["key"]
    return key


def test_a_restricted_key_lists_only_the_models_it_may_use(gateway: str) -> None:
    def listed(key: str) -> list[str]:
        answer = httpx.get(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        return [m["id"] for m in answer.json()["data"]]

    assert listed(new_key(gateway, allowed_models=["auto", "alpha"])) == ["auto", "alpha"]
    assert listed(new_key(gateway, allowed_models=["beta"])) == ["beta"]
    assert listed(new_key(gateway)) == ["auto", "alpha", "beta"]


def test_revoking_a_key_that_does_not_exist_is_audited_as_denied(upstream: Upstream, tmp_path: Path) -> None:
    with running(gateway_config(upstream.url, tmp_path)) as url:
        assert httpx.delete(f"{url}/admin/keys/key-0000000000000000", headers=AUTH, timeout=30).status_code == 404
    entries = asyncio.run(SqliteAuditLog(tmp_path / "audit.sqlite", "routeiq_audit").entries())
    revokes = [e for e in entries if e.action == "key.revoke"]
    assert [(e.target, e.outcome) for e in revokes] == [("key-0000000000000000", "denied")]


@pytest.mark.parametrize("mode", ["public", "operator", "off"])
def test_the_api_description_can_be_closed(upstream: Upstream, tmp_path: Path, mode: str) -> None:
    config = gateway_config(upstream.url, tmp_path, security={"upstream_allowlist": ["127.0.0.0/8"], "api_docs": mode})
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        anonymous = client.get("/openapi.json")
        keyed = client.get("/openapi.json", headers=AUTH)
        docs = client.get("/docs")
    expected = {"public": (200, 200, 200), "operator": (401, 200, 404), "off": (404, 404, 404)}[mode]
    assert (anonymous.status_code, keyed.status_code, docs.status_code) == expected
    if keyed.status_code == 200:
        assert "/v1/chat/completions" in keyed.json()["paths"]


PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}


def test_cors_is_off_by_default_and_follows_its_settings(gateway: str, upstream: Upstream, tmp_path: Path) -> None:
    closed = httpx.options(f"{gateway}{CHAT}", headers=PREFLIGHT, timeout=30)
    assert closed.status_code == 405 and "access-control-allow-origin" not in closed.headers
    security = {"upstream_allowlist": ["127.0.0.0/8"], "cors": {"allow_origins": ["https://app.example.com"]}}
    with running(gateway_config(upstream.url, tmp_path, security=security)) as url:
        allowed = httpx.options(f"{url}{CHAT}", headers=PREFLIGHT, timeout=30)
        other = httpx.options(f"{url}{CHAT}", headers={**PREFLIGHT, "Origin": "https://evil.example"}, timeout=30)
        answered = httpx.post(f"{url}{CHAT}", json=chat_body(), headers={**AUTH, "Origin": "https://app.example.com"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    assert answered.status_code == 200 and "x-routeiq-model" in answered.headers["access-control-expose-headers"]
