"""One caller cannot open a circuit for everyone: a key whose requests fail (an upstream it makes fail, or one
down for it alone) trips nothing until a second caller fails too (`breaker.min_callers`, default 2). It used to
take any five failures in a row, from anyone."""

from __future__ import annotations

from pathlib import Path

import httpx

from serving.server import running
from tests.attack.conftest import AUTH, CHAT, chat_body, gateway_config

DOWN = "http://127.0.0.1:9/v1"
"""The discard port: nothing listens there, so every call fails as a real upstream failure."""
PAUSED = "paused by its circuit breaker"


def circuit(url: str) -> str:
    state: str = httpx.get(f"{url}/_health/ready", timeout=30).json()["upstreams"]["alpha"]["circuit"]
    return state


def test_a_second_caller_is_needed_to_open_a_circuit(tmp_path: Path) -> None:
    breaker = {"breaker": {"failures": 2, "cooldown_seconds": 300}}
    with running(gateway_config(DOWN, tmp_path, failover=breaker)) as url:
        other = httpx.post(f"{url}/admin/keys", json={"team": "other"}, headers=AUTH, timeout=30).json()["key"]
        for _ in range(6):  # three times the failure threshold, all from the master key
            answer = httpx.post(f"{url}{CHAT}", json=chat_body(), headers=AUTH, timeout=30)
            assert answer.status_code >= 500 and PAUSED not in answer.json()["error"]["message"], answer.text
        alone = circuit(url)
        failed = httpx.post(f"{url}{CHAT}", json=chat_body(), headers={"Authorization": f"Bearer {other}"}, timeout=30)
        assert failed.status_code >= 500
        both = circuit(url)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        skipped = httpx.post(f"{url}{CHAT}", json=chat_body(), headers=AUTH, timeout=30)
    assert alone == "closed"
    assert both == "open"
    assert 'routeiq_circuit_state{model="alpha",state="open"} 1.0' in metrics
    assert skipped.status_code == 503 and PAUSED in skipped.json()["error"]["message"]
