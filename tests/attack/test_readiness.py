"""Readiness says what serves: the fallback and why when no router is loaded (and, with `require_router`, not
ready at all), and each upstream's circuit — it used to report ready while routing at random and while every
upstream was down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from serving.config import parse_config
from serving.server import running
from tests.attack.conftest import AUTH, CHAT, MASTER_KEY, Upstream, chat_body, gateway_config

READY = "/_health/ready"


def learned_config(upstream: Upstream, folder: Path, **routing: Any) -> Any:
    """A gateway routing `auto` with a learned router from a reference where nothing is registered."""
    return parse_config(
        {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream.url}}
                for m in ("alpha", "beta")
            ],
            "router_settings": {"routing_strategy": "llmrouter-any"},
            "general_settings": {"master_key": MASTER_KEY},
            "routeiq_settings": {
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(folder / "traces")},
                "access": {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "audit.sqlite")}},
                "routing": {"reference": str(folder / "no-router"), **routing},
            },
        }
    )


def polled(url: str) -> httpx.Response:
    """The readiness answer once the first registry poll is done (generous bound)."""
    deadline = time.monotonic() + 60
    while True:
        answer = httpx.get(f"{url}{READY}", timeout=30)
        if answer.json()["checks"]["registry_polled"] or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_the_fallback_says_why_it_serves(upstream: Upstream, tmp_path: Path) -> None:
    with running(learned_config(upstream, tmp_path)) as url:
        ready = polled(url)
        admin = httpx.get(f"{url}/admin/router", headers=AUTH, timeout=30).json()
    router = ready.json()["router"]
    assert ready.status_code == 200 and router["mode"] == "fallback"
    assert "no router loaded from" in router["fallback_reason"] and "no-router" in router["fallback_reason"]
    assert admin["mode"] == "fallback" and admin["fallback_reason"] == router["fallback_reason"]


def test_require_router_keeps_the_gateway_unready_while_the_fallback_serves(upstream: Upstream, tmp_path: Path) -> None:
    with running(learned_config(upstream, tmp_path, require_router=True)) as url:
        ready = polled(url)
    assert ready.status_code == 503 and ready.json()["status"] == "starting"
    assert ready.json()["checks"]["router_loaded"] is False


def test_readiness_shows_an_open_circuit(tmp_path: Path) -> None:
    breaker = {"breaker": {"failures": 2, "min_callers": 1, "cooldown_seconds": 300}}
    config = gateway_config("http://127.0.0.1:9/v1", tmp_path, failover=breaker)
    with running(config) as url:
        before = httpx.get(f"{url}{READY}", timeout=30).json()["upstreams"]["alpha"]
        for _ in range(2):
            assert httpx.post(f"{url}{CHAT}", json=chat_body(), headers=AUTH, timeout=30).status_code >= 500
        ready = httpx.get(f"{url}{READY}", timeout=30)
    alpha = ready.json()["upstreams"]["alpha"]
    assert before["circuit"] == "closed" and before["last_failure"] is None
    assert ready.status_code == 200 and alpha["circuit"] == "open" and alpha["last_failure"] is not None
    assert ready.json()["upstreams"]["beta"]["circuit"] == "closed"
