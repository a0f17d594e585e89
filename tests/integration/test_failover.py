"""Retries, fallbacks and circuit breakers against real upstreams on loopback: replay providers (one healthy,
one answering 429 with a long Retry-After, one cutting every stream mid-way) reached through fault proxies
that reset, cut or hold requests. One gateway serves every case; each case uses its own model names, so
circuit state never leaks between them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from serving.config import parse_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans
from tests.integration.fault_proxy import FaultProxy
from tests.serving.conftest import PROMPT, write_outcomes

COOLDOWN = 1.0
FAILURES = 3
MESSAGES = [{"role": "user", "content": PROMPT}]


class World:
    """The gateway's URL, its span folder and the fault proxies by name (to read and change their counts)."""

    def __init__(self, url: str, traces: Path, proxies: dict[str, FaultProxy]) -> None:
        self.url = url
        self.traces = traces
        self.proxies = proxies
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)

    def calls(self, name: str) -> int:
        return sum(self.proxies[name].counts.values())

    def span(self, response_id: str) -> dict[str, Any]:
        """Attributes of the chat span of `response_id`, once the background exporter has written it."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            spans = read_spans(self.traces) if self.traces.exists() else []
            found = [s.attributes for s in spans if s.attributes.get(a.RESPONSE_ID) == response_id]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no span for response {response_id}")


def _deployment(name: str, api_base: str) -> dict[str, Any]:
    # The replay provider knows no model `ghost`: it refuses such requests with a 404.
    upstream = "ghost" if name == "refusing" else "alpha"
    return {"model_name": name, "litellm_params": {"model": f"openai/{upstream}", "api_base": api_base}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("failover")
    outcomes = write_outcomes(folder / "outcomes.parquet")
    with ExitStack() as stack:
        healthy = stack.enter_context(replay_running(ReplaySettings(outcomes=outcomes)))
        limited = stack.enter_context(
            replay_running(ReplaySettings(outcomes=outcomes, rate_limit_rate=1.0, retry_after_seconds=30))
        )
        halfway = stack.enter_context(replay_running(ReplaySettings(outcomes=outcomes, broken_stream_rate=1.0)))
        proxies = {
            "backup": FaultProxy(healthy, rate=0.0),
            "reset": FaultProxy(healthy, rate=1.0, faults=("reset",)),
            "cut": FaultProxy(healthy, rate=1.0, faults=("cut",)),
            "refusing": FaultProxy(healthy, rate=0.0),
            "breaker": FaultProxy(healthy, rate=1.0, faults=("reset",)),
            "lonely": FaultProxy(healthy, rate=1.0, faults=("reset",)),
        }
        urls = {name: stack.enter_context(proxy) for name, proxy in proxies.items()}
        deployments = [_deployment(name, url) for name, url in urls.items()]
        deployments += [_deployment("limited", limited), _deployment("halfway", halfway)]
        traces = folder / "traces"
        config = parse_config(
            {
                "model_list": deployments,
                "router_settings": {"fallbacks": [{"reset": ["backup"]}, {"cut": ["backup"]}]},
                "routeiq_settings": {
                    "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                    "telemetry": {"directory": str(traces)},
                    "access": {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "a.sqlite")}},
                    "routing": {"reference": str(folder / "no-router")},
                    "failover": {
                        "retries": 2,
                        "backoff_seconds": 0.01,
                        "fallbacks": {
                            "limited": ["backup"],
                            "halfway": ["backup"],
                            "refusing": ["backup"],
                            "breaker": ["backup"],
                        },
                        "breaker": {
                            "failures": FAILURES,
                            "cooldown_seconds": COOLDOWN,
                            "min_callers": 1,
                        },  # one caller here
                    },
                },
            }
        )
        url = stack.enter_context(running(config))
        world = World(url, traces, proxies)
        stack.callback(world.client.close)
        yield world


def test_a_failing_deployment_is_retried_then_its_fallback_answers(world: World) -> None:
    backup_before = world.calls("backup")
    response = world.client.chat.completions.with_raw_response.create(model="reset", messages=MESSAGES)
    assert response.headers["x-routeiq-model"] == "backup"
    completion = response.parse()
    assert completion.choices[0].message.content
    assert world.calls("reset") == 3  # the first try and two retries (LiteLLM's `fallbacks` format was read)
    assert world.calls("backup") == backup_before + 1
    span = world.span(completion.id)
    assert span[a.CHOSEN_MODEL] == "reset" and span[a.SERVED_MODEL] == "backup"
    assert span[a.FAILED_ATTEMPTS] == ["reset:upstream_error"] * 3
    assert span[a.HTTP_STATUS] == 200


def test_a_stream_cut_before_its_first_event_falls_back(world: World) -> None:
    stream = world.client.chat.completions.create(model="cut", messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    assert world.calls("cut") >= 1


def test_a_stream_broken_after_its_first_event_is_not_replayed_elsewhere(world: World) -> None:
    """Part of the answer already reached the client: the stream ends with an error event, not a fallback."""
    backup_before = world.calls("backup")
    stream = world.client.chat.completions.create(model="halfway", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="ended the stream before the answer finished"):
        for _ in stream:
            pass
    assert world.calls("backup") == backup_before


def test_a_long_retry_after_skips_the_retries_and_falls_back(world: World) -> None:
    started = time.monotonic()
    response = world.client.chat.completions.with_raw_response.create(model="limited", messages=MESSAGES)
    assert response.headers["x-routeiq-model"] == "backup"
    assert time.monotonic() - started < 10  # never waited out the upstream's 30 s Retry-After
    assert world.span(response.parse().id)[a.FAILED_ATTEMPTS] == ["limited:upstream_rate_limited"]


def test_a_request_the_upstream_refuses_is_neither_retried_nor_sent_to_a_fallback(world: World) -> None:
    backup_before = world.calls("backup")
    with pytest.raises(openai.NotFoundError):
        world.client.chat.completions.create(model="refusing", messages=MESSAGES)
    assert world.calls("refusing") == 1
    assert world.calls("backup") == backup_before


def test_the_breaker_opens_skips_cools_down_and_closes(world: World) -> None:
    proxy = world.proxies["breaker"]
    response = world.client.chat.completions.with_raw_response.create(model="breaker", messages=MESSAGES)
    assert response.headers["x-routeiq-model"] == "backup"
    assert world.calls("breaker") == FAILURES  # the retries made it fail FAILURES times in a row: open

    response = world.client.chat.completions.with_raw_response.create(model="breaker", messages=MESSAGES)
    assert response.headers["x-routeiq-model"] == "backup"
    assert world.calls("breaker") == FAILURES  # skipped while open
    assert world.span(response.parse().id)[a.FAILED_ATTEMPTS] == ["breaker:circuit_open"]

    time.sleep(COOLDOWN + 0.2)
    proxy.rate = 0.0  # the deployment recovered
    response = world.client.chat.completions.with_raw_response.create(model="breaker", messages=MESSAGES)
    assert response.headers["x-routeiq-model"] == "breaker"  # the trial call answered: closed again
    assert world.calls("breaker") == FAILURES + 1
    world.client.chat.completions.create(model="breaker", messages=MESSAGES)
    assert world.calls("breaker") == FAILURES + 2


def test_an_open_circuit_without_fallback_is_a_503_with_retry_after(world: World) -> None:
    with pytest.raises(openai.InternalServerError):  # the first try and its retries open the circuit
        world.client.chat.completions.create(model="lonely", messages=MESSAGES)
    assert world.calls("lonely") == FAILURES
    response = httpx.post(
        f"{world.url}/v1/chat/completions", json={"model": "lonely", "messages": MESSAGES}, timeout=30
    )
    assert response.status_code == 503
    error = orjson.loads(response.content)["error"]
    assert error["code"] == "upstream_unavailable"
    assert "routeiq_settings.failover.fallbacks" in error["message"]
    assert 1 <= int(response.headers["retry-after"]) <= COOLDOWN + 1
    metrics = httpx.get(f"{world.url}/metrics", timeout=10).text
    assert 'routeiq_circuit_state{model="lonely",state="open"} 1.0' in metrics
    assert f'routeiq_upstream_failures_total{{model="lonely",reason="upstream_error"}} {FAILURES}.0' in metrics
    assert 'routeiq_upstream_failures_total{model="lonely",reason="circuit_open"} 1.0' in metrics
