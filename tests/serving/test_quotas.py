"""Quotas and budgets through the real gateway on loopback with the openai SDK: per-key rpm, tpm counted from
the upstream's usage, budgets, team limits shared by keys, and the Redis store shared by two gateways (exact
admission under concurrency, 503 when Redis is unreachable). The replay upstream reports 12 tokens and
$0.001 per answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from openai import AsyncOpenAI, OpenAI

from tests.conftest import REDIS_URL, start_inside_a_window
from tests.serving.conftest import default_access

MASTER = "sk-master-quota-test"
PROMPT = "What is 2 + 2? Answer with one sentence."
GatewayFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture(autouse=True)
def fresh_window() -> None:
    """Start each test well inside a 60-second window, so a window boundary never resets a count mid-test
    (the margin covers the gateway's start-up on a loaded machine, which comes after this check)."""
    start_inside_a_window(20)


def ask(url: str, key: str) -> str:
    with OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        answer = client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": PROMPT}])
    return answer.choices[0].message.content or ""


def refused(url: str, key: str) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as error:
        ask(url, key)
    body = error.value.body
    assert isinstance(body, dict) and body["code"] == "quota_exceeded" and body["type"] == "rate_limit_error"
    return error.value


def create(url: str, body: dict[str, Any]) -> str:
    response = httpx.post(f"{url}/admin/keys", json=body, headers={"Authorization": f"Bearer {MASTER}"})
    assert response.status_code == 200, response.text
    secret: str = response.json()["key"]
    return secret


def access(folder: Path, **quotas: Any) -> dict[str, Any]:
    return {**default_access(folder), "quotas": quotas}


def test_a_key_gets_its_rpm_then_429_with_retry_after(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        key = create(url, {"rpm": 3})
        for _ in range(3):
            assert ask(url, key)
        error = refused(url, key)
        retry_after = int(error.response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert "3 requests per minute" in error.message and "rpm" in error.message
        for _ in range(5):
            assert ask(url, MASTER)  # the master key is never limited
        assert ask(url, create(url, {}))  # nor a key without limits


def test_tokens_per_minute_are_counted_from_the_usage(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        key = create(url, {"tpm": 20})
        assert ask(url, key)  # 12 tokens used: under 20
        assert ask(url, key)  # 24 tokens now
        error = refused(url, key)
        assert "tokens per minute" in error.message and error.response.headers.get("retry-after")


def test_an_exhausted_budget_is_refused_without_retry_after(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        key = create(url, {"max_budget_usd": 0.0015})
        assert ask(url, key)  # $0.001 spent
        assert ask(url, key)  # $0.002: over from now on
        error = refused(url, key)
        assert "retry-after" not in error.response.headers
        assert "max_budget_usd" in error.message


def test_a_team_limit_is_shared_by_its_keys(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    with start_gateway(master_key=MASTER, access=access(tmp_path, teams={"red": {"rpm": 3}})) as url:
        first, second = create(url, {"team": "red"}), create(url, {"team": "red"})
        other = create(url, {"team": "blue"})
        assert ask(url, first) and ask(url, second) and ask(url, first)
        for key in (first, second):
            error = refused(url, key)
            assert "'red'" in error.message and "teams.red.rpm" in error.message
        assert ask(url, other)


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_two_gateways_sharing_a_store_admit_exactly_the_rpm(
    start_gateway: GatewayFactory, tmp_path: Path, redis_prefix: str, backend: str
) -> None:
    where = {"redis_url": REDIS_URL, "key_prefix": redis_prefix} if backend == "redis" else {}
    shared = access(tmp_path, backend=backend, path=str(tmp_path / "quotas.sqlite"), **where)
    with start_gateway(master_key=MASTER, access=shared) as one, start_gateway(master_key=MASTER, access=shared) as two:
        key = create(one, {"rpm": 10})
        statuses = asyncio.run(_burst([one, two] * 15, key))
    assert statuses.count(200) == 10 and statuses.count(429) == 20


async def _burst(urls: list[str], key: str) -> list[int]:
    clients = {url: AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) for url in set(urls)}

    async def one(url: str) -> int:
        try:
            await clients[url].chat.completions.create(model="alpha", messages=[{"role": "user", "content": PROMPT}])
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    try:
        return list(await asyncio.gather(*(one(url) for url in urls)))
    finally:
        for client in clients.values():
            await client.close()


def test_redis_counts_tokens_and_budget_across_gateways(
    start_gateway: GatewayFactory, tmp_path: Path, redis_prefix: str
) -> None:
    shared = access(tmp_path, backend="redis", redis_url=REDIS_URL, key_prefix=redis_prefix, teams={"red": {"tpm": 20}})
    with start_gateway(master_key=MASTER, access=shared) as one, start_gateway(master_key=MASTER, access=shared) as two:
        budget = create(one, {"max_budget_usd": 0.0015})
        assert ask(one, budget) and ask(two, budget)
        assert "retry-after" not in refused(one, budget).response.headers
        team = create(two, {"team": "red"})
        assert ask(one, team) and ask(two, team)
        assert "tokens per minute" in refused(one, team).message
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert list(client.scan_iter(match=f"{redis_prefix}:*"))  # the counters really live in Redis
    finally:
        client.close()


def test_an_unreachable_redis_fails_closed(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    down = access(tmp_path, backend="redis", redis_url="redis://127.0.0.1:1/0")
    with start_gateway(master_key=MASTER, access=down) as url:
        key = create(url, {"rpm": 100})
        with pytest.raises(openai.InternalServerError) as error:
            ask(url, key)
        assert error.value.status_code == 503
        body = error.value.body
        assert isinstance(body, dict) and body["code"] == "access_unavailable" and "quotas" in body["message"]
        assert ask(url, MASTER)  # no limits to check: Redis is not needed
        assert ask(url, create(url, {}))


def test_the_sqlite_store_keeps_spend_and_windows_across_restarts(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    durable = access(tmp_path, backend="sqlite", path=str(tmp_path / "quotas.sqlite"))
    with start_gateway(master_key=MASTER, access=durable) as url:
        budget, rpm = create(url, {"max_budget_usd": 0.0015}), create(url, {"rpm": 2})
        assert ask(url, budget) and ask(url, budget)  # $0.002 spent
        assert ask(url, rpm) and ask(url, rpm)
    with start_gateway(master_key=MASTER, access=durable) as url:  # a restart, same key store and quota file
        assert "max_budget_usd" in refused(url, budget).message
        assert "requests per minute" in refused(url, rpm).message
    with start_gateway(master_key=MASTER, access=access(tmp_path)) as url:  # the memory store forgets
        assert ask(url, budget)


def test_an_unusable_sqlite_store_fails_closed(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    (tmp_path / "quota-dir").mkdir()
    broken = access(tmp_path, backend="sqlite", path=str(tmp_path / "quota-dir"))
    with start_gateway(master_key=MASTER, access=broken) as url:
        key = create(url, {"rpm": 100})
        with pytest.raises(openai.InternalServerError) as error:
            ask(url, key)
        assert error.value.status_code == 503
        assert ask(url, MASTER)


def test_embeddings_count_against_the_same_quota(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        key = create(url, {"rpm": 2})
        with OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
            assert client.embeddings.create(model="alpha", input="hello").data
            assert ask(url, key)
            with pytest.raises(openai.RateLimitError) as error:
                client.embeddings.create(model="alpha", input="hello")
        assert error.value.response.headers.get("retry-after")


def test_a_stream_is_charged_once_it_ends(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        key = create(url, {"tpm": 20})
        with OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
            for _ in range(2):
                chunks = client.chat.completions.create(
                    model="alpha", messages=[{"role": "user", "content": PROMPT}], stream=True
                )
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "tokens per minute" in refused(url, key).message
