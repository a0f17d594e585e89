"""The gateway under a 20% faulty upstream: a fault proxy (latency, reset, blackhole, slow drip, cut before
the body) in front of a replay provider that itself answers some calls 429 or 500 or breaks streams mid-way.
With a fallback configured every request succeeds; without one, every failure is an OpenAI-shaped error that
arrives within its deadline. Requests run 8 at a time, streamed and not, through the official openai client."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from serving.config import parse_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.server import running
from tests.integration.fault_proxy import FAULTS, FaultProxy
from tests.serving.conftest import PROMPT, write_outcomes

REQUESTS = 120
CONCURRENCY = 8
PROXY_FAULT_RATE = 0.12
"""With the replay's 4% 429s and 4% 500s, about 20% of upstream calls fail."""
REPLAY_RATES = {"rate_limit_rate": 0.04, "error_rate": 0.04}
FIRST_BYTE, CHUNK_GAP, TOTAL = 2.0, 2.0, 4.0
"""Wide enough for the healthy replay provider, which shares this process (and 2 cores) with the gateway, the
proxies and 8 client threads; the drip fault (a byte every 50 ms) still misses them by far."""
SLACK = 1.5
"""Seconds allowed beyond a deadline for the gateway to notice, answer, and the client to read it."""
MESSAGES = [{"role": "user", "content": PROMPT}]


@dataclass(frozen=True)
class Outcome:
    stream: bool
    seconds: float
    text: str
    error: str | None
    """None for a whole answer; else the error's class and status (or "stream error")."""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, FaultProxy]]]:
    folder = tmp_path_factory.mktemp("faults")
    outcomes = write_outcomes(folder / "outcomes.parquet")
    with ExitStack() as stack:
        faulty = stack.enter_context(replay_running(ReplaySettings(outcomes=outcomes, seed=7, **REPLAY_RATES)))
        broken = stack.enter_context(
            replay_running(ReplaySettings(outcomes=outcomes, seed=8, broken_stream_rate=0.1, **REPLAY_RATES))
        )
        healthy = stack.enter_context(replay_running(ReplaySettings(outcomes=outcomes)))
        proxies = {
            "primary": FaultProxy(faulty, rate=PROXY_FAULT_RATE, seed=1),
            "solo": FaultProxy(broken, rate=PROXY_FAULT_RATE, seed=2),
        }
        urls = {name: stack.enter_context(proxy) for name, proxy in proxies.items()}
        upstreams = {**urls, "backup": healthy}
        config = parse_config(
            {
                "model_list": [
                    {"model_name": name, "litellm_params": {"model": "openai/alpha", "api_base": url}}
                    for name, url in upstreams.items()
                ],
                "routeiq_settings": {
                    "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                    "telemetry": {"directory": str(folder / "traces")},
                    "access": {"key_store": str(folder / "k.sqlite"), "audit": {"path": str(folder / "a.sqlite")}},
                    "routing": {"reference": str(folder / "no-router")},
                    "limits": {
                        "first_byte_seconds": FIRST_BYTE,
                        "chunk_gap_seconds": CHUNK_GAP,
                        "total_seconds": TOTAL,
                    },
                    "failover": {"fallbacks": {"primary": ["backup"]}},
                },
            }
        )
        yield stack.enter_context(running(config)), proxies


def _ask(client: openai.OpenAI, model: str, stream: bool) -> Outcome:
    started = time.monotonic()
    text, error = "", None
    try:
        if stream:
            chunks = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            text = client.chat.completions.create(model=model, messages=MESSAGES).choices[0].message.content or ""
    except openai.APIStatusError as exc:
        error = f"{type(exc).__name__} {exc.status_code}"
    except openai.APIError as exc:  # an `{"error": ...}` event ended a started stream
        error = f"stream error: {exc.message}"
    return Outcome(stream, time.monotonic() - started, text, error)


def _run(url: str, model: str) -> list[Outcome]:
    # The client's own timeout is far above every deadline: the gateway, not the client, must end each wait.
    with (
        openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60) as client,
        ThreadPoolExecutor(CONCURRENCY) as pool,
    ):
        return list(pool.map(lambda i: _ask(client, model, stream=bool(i % 2)), range(REQUESTS)))


def _faults(proxy: FaultProxy) -> dict[str, Any]:
    return {name: proxy.counts[name] for name in FAULTS}


def test_with_a_fallback_every_request_succeeds_at_20_percent_faults(
    gateway: tuple[str, dict[str, FaultProxy]],
) -> None:
    url, proxies = gateway
    outcomes = _run(url, "primary")
    failed = [o for o in outcomes if o.error is not None or not o.text]
    assert not failed, f"{len(failed)} of {REQUESTS} failed: {Counter(o.error for o in failed)}"
    faults = _faults(proxies["primary"])
    assert all(faults.values()), f"some fault never fired: {faults}"  # the run really exercised each fault
    print(f"with a fallback: {len(outcomes)} answered whole; proxy faults {faults}")  # shown with -s


def test_without_a_fallback_every_error_arrives_within_its_deadline(
    gateway: tuple[str, dict[str, FaultProxy]],
) -> None:
    url, proxies = gateway
    outcomes = _run(url, "solo")
    errors = Counter(o.error for o in outcomes if o.error is not None)
    assert errors, "a 20% faulty upstream without a fallback must fail some requests"
    assert set(errors) <= {
        "RateLimitError 429",
        "InternalServerError 502",
        "InternalServerError 504",
        *(e for e in errors if e.startswith("stream error")),
    }, errors
    late = [o for o in outcomes if o.seconds > TOTAL + SLACK]
    assert not late, f"{len(late)} requests outlived the {TOTAL} s total deadline: {late[:3]}"
    assert sum(o.error is None and bool(o.text) for o in outcomes) >= REQUESTS * 0.6
    assert all(_faults(proxies["solo"]).values())
    slowest = max(o.seconds for o in outcomes if o.error is not None)
    print(f"without: errors {dict(errors)}, slowest error {slowest:.2f} s; proxy faults {_faults(proxies['solo'])}")


def test_fault_proxy_counts_one_draw_per_request(gateway: tuple[str, dict[str, FaultProxy]]) -> None:
    """The 20% is real: about PROXY_FAULT_RATE of the proxied requests got a fault (seeded draws). A few
    requests may skip the proxy while the primary's circuit is open."""
    _, proxies = gateway
    counts = proxies["primary"].counts
    total = sum(counts.values())
    assert total >= REQUESTS * 0.8
    assert 0.05 <= (total - counts["ok"]) / total <= 0.2
