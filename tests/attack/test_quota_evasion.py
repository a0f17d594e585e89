"""Budgets and tpm hold against clients that leave streams early and against concurrent requests: what a stream
delivered is charged when the client walks out, and each request reserves its maximum before its upstream call so
requests in flight together cannot spend past a limit — in one gateway and across two sharing Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from openai import AsyncOpenAI, OpenAI

from serving.server import running
from tests.attack.conftest import AUTH, MASTER_KEY, Upstream, access_section, chat_body, gateway_config, serve_replay
from tests.conftest import REDIS_URL, start_inside_a_window
from tests.serving.conftest import PROMPT, write_outcomes

LONG_ANSWER = "The answer, says {model}, is four: " + "two plus two makes four, always and everywhere. " * 8
PRICE = 1e-4
"""USD per token, input and output, configured on the deployments (the replay upstream reports $0.001 per
whole answer; a cut stream carries no usage, so it is priced from these)."""
PRICES = {"input_cost_per_token": PRICE, "output_cost_per_token": PRICE}
SLOW = {"default": {"ttft_ms": 1500.0, "per_token_ms": 0.0}}
"""Answers take 1.5 s, so a burst of requests is in flight together."""


@pytest.fixture(autouse=True)
def fresh_window() -> None:
    """Start each test well inside a 60-second window (a boundary would reset tpm mid-test)."""
    start_inside_a_window(25)


DRIP = {"default": {"ttft_ms": 0.0, "per_token_ms": 400.0}}
"""The recorded answer has 2 output tokens: 0.8 s of decoding, one content chunk every 0.1 s."""


@pytest.fixture(scope="module")
def long_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    path = write_outcomes(tmp_path_factory.mktemp("long") / "outcomes.parquet", LONG_ANSWER)
    with serve_replay(path, latency=DRIP) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def slow_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    path = write_outcomes(tmp_path_factory.mktemp("slow") / "outcomes.parquet")
    with serve_replay(path, latency=SLOW) as upstream:
        yield upstream


def new_key(url: str, **limits: Any) -> str:
    answer = httpx.post(f"{url}/admin/keys", json=limits, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["key"]
    return key


def read_part_of_a_stream(url: str, key: str, chunks: int) -> int:
    """Open a stream, read `chunks` content chunks, leave; the status the gateway answered with."""
    with OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        try:
            stream = client.chat.completions.create(
                model="alpha", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
        except openai.APIStatusError as exc:
            return exc.status_code
        seen = 0
        for chunk in stream:
            seen += bool(chunk.choices and chunk.choices[0].delta.content)
            if seen >= chunks:
                break
        stream.close()
    return 200


def refused_within(url: str, key: str, attempts: int) -> int | None:
    """The attempt (1-based) at which a cut stream was refused with 429, or None."""
    for attempt in range(1, attempts + 1):
        status = read_part_of_a_stream(url, key, chunks=7)
        if status == 429:
            return attempt
        assert status == 200
        time.sleep(0.5)  # the gateway settles a cut stream once it notices the client left
    return None


def test_a_budget_is_spent_by_streams_the_client_cuts_short(long_upstream: Upstream, tmp_path: Path) -> None:
    config = gateway_config(long_upstream.url, tmp_path, params=PRICES)
    with running(config) as url:
        key = new_key(url, max_budget_usd=0.02)
        # Each cut stream delivers about 80 tokens of the answer and a ~10-token prompt: ~$0.009.
        attempt = refused_within(url, key, attempts=8)
        assert attempt is not None and attempt <= 5, "streams cut short were never charged"
        with (
            OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client,
            pytest.raises(openai.RateLimitError) as error,
        ):
            client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": PROMPT}])
        assert "max_budget_usd" in error.value.message


def test_tpm_is_spent_by_streams_the_client_cuts_short(long_upstream: Upstream, tmp_path: Path) -> None:
    config = gateway_config(long_upstream.url, tmp_path, params=PRICES)
    with running(config) as url:
        key = new_key(url, tpm=100)
        # The first cut stream alone uses ~100 tokens (its prompt and what it delivered).
        attempt = refused_within(url, key, attempts=6)
        assert attempt is not None and attempt <= 4, "tokens of streams cut short were never counted"


async def burst(urls: list[str], key: str, **extra: Any) -> list[int]:
    clients = {url: AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) for url in set(urls)}

    async def one(url: str) -> int:
        try:
            await clients[url].chat.completions.create(
                model="alpha", messages=[{"role": "user", "content": PROMPT}], **extra
            )
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    try:
        return list(await asyncio.gather(*(one(url) for url in urls)))
    finally:
        for client in clients.values():
            await client.close()


@pytest.mark.parametrize("limit", [{"tpm": 100}, {"max_budget_usd": 0.01}], ids=["tpm", "budget"])
def test_concurrent_requests_cannot_spend_past_a_limit_together(
    slow_upstream: Upstream, tmp_path: Path, limit: dict[str, Any]
) -> None:
    """Each request may use its ~10-token prompt + 40 tokens (max_tokens): 50 tokens, $0.005 at the configured
    price. Two fit in a tpm of 100 or a budget of $0.01, so of six sent together exactly two are served."""
    config = gateway_config(slow_upstream.url, tmp_path, params=PRICES)
    with running(config) as url:
        key = new_key(url, **limit)
        statuses = asyncio.run(burst([url] * 6, key, max_tokens=40))
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429], statuses


def test_replicas_sharing_redis_cannot_spend_past_a_budget_together(
    slow_upstream: Upstream, tmp_path: Path, redis_prefix: str
) -> None:
    quotas = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix}
    shared = access_section(tmp_path, quotas=quotas)
    one_config = gateway_config(slow_upstream.url, tmp_path / "one", params=PRICES, access=shared)
    two_config = gateway_config(slow_upstream.url, tmp_path / "two", params=PRICES, access=shared)
    with running(one_config) as one, running(two_config) as two:
        key = new_key(one, max_budget_usd=0.01)
        statuses = asyncio.run(burst([one, two] * 4, key, max_tokens=40))
        assert statuses.count(200) == 2 and statuses.count(429) == 6, statuses
        client = redis.Redis.from_url(REDIS_URL)
        try:
            holds = [k for k in client.scan_iter(match=f"{redis_prefix}:*:holds") if client.hlen(k)]
        finally:
            client.close()
    assert holds == [], "settled requests left their holds behind"


def test_a_request_that_cannot_fit_beside_others_says_what_to_change(slow_upstream: Upstream, tmp_path: Path) -> None:
    config = gateway_config(slow_upstream.url, tmp_path, params=PRICES)
    with running(config) as url:
        key = new_key(url, tpm=100)

        async def two() -> tuple[int, str]:
            async with AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
                first = asyncio.ensure_future(
                    client.chat.completions.create(
                        model="alpha", messages=[{"role": "user", "content": PROMPT}], max_tokens=40
                    )
                )
                await asyncio.sleep(0.5)
                try:
                    await client.chat.completions.create(
                        model="alpha", messages=[{"role": "user", "content": PROMPT}], max_tokens=80
                    )
                except openai.RateLimitError as exc:
                    await first
                    return exc.status_code, exc.message
                await first
                return 200, ""

        status, message = asyncio.run(two())
    assert status == 429
    assert "max_tokens" in message and "tokens per minute" in message and "Retry-After" in message


def test_the_master_key_and_unlimited_keys_reserve_nothing(slow_upstream: Upstream, tmp_path: Path) -> None:
    config = gateway_config(slow_upstream.url, tmp_path, params=PRICES)
    with running(config) as url:
        statuses = asyncio.run(burst([url] * 4, MASTER_KEY, max_tokens=40))
        statuses += asyncio.run(burst([url] * 4, new_key(url), max_tokens=40))
    assert statuses == [200] * 8
    assert chat_body()  # the shared body builder is the one the other attack suites use
