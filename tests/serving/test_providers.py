"""serving.providers against real replay servers on 127.0.0.1 answering with real RouterBench outcomes.

Both call paths (direct and LiteLLM) run the same checks; no HTTP or litellm call is mocked.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.prompt import estimate_tokens, prompt_id
from serving.exceptions import (
    ForbiddenParameterError,
    GatewayConfigError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from serving.providers import sse
from serving.providers.deployment import Deployment
from serving.providers.pricing import Cost, request_cost
from serving.providers.providers import Providers
from serving.providers.result import ProviderStream, StreamSummary
from serving.replay import ReplaySettings, running
from serving.replay.routes.embeddings import vector
from serving.security.ssrf import Allowlist

GPT4, LLAMA = "gpt-4-1106-preview", "meta/llama-2-70b-chat"
NOCOST = "gpt-4-1106-preview-nocost"
"""A twin of GPT4's real rows with the cost removed: the replay then sends usage without `cost`."""
PRICE_IN, PRICE_OUT = 1e-5, 3e-5
PATHS = ["direct", "litellm"]
LOOPBACK = Allowlist.parse(["127.0.0.0/8"])
"""The replay servers run on loopback, which the SSRF guard admits only when allow-listed."""
T = TypeVar("T")

# Warnings litellm's own code raises mid-call (turned into errors, they would fail the call): pydantic on the
# `ReadOnly` TypedDicts litellm builds adapters for on first use, and on its stream handler reading
# `model_computed_fields` from an instance.


class World:
    """The module's servers, recorded rows, event loop and one started `Providers` per path."""

    def __init__(self, loop: asyncio.Runner, rows: dict[str, dict[str, Any]], urls: dict[str, str]) -> None:
        self.loop, self.rows, self.urls = loop, rows, urls
        self.providers: dict[str, Providers] = {}

    def run(self, call: Awaitable[T]) -> T:
        return self.loop.run(_coroutine(call))

    def body(self, model: str = GPT4, **extra: Any) -> dict[str, Any]:
        return {"model": "ignored", "messages": [{"role": "user", "content": self.rows[model]["prompt"]}], **extra}

    def answer(self, model: str = GPT4) -> str:
        return str(self.rows[model]["response"])


async def _coroutine(call: Awaitable[T]) -> T:
    return await call


def _entry(name: str, model: str, api_base: str, **params: Any) -> Deployment:
    return Deployment.from_entry(
        {"model_name": name, "litellm_params": {"model": model, "api_base": api_base, **params}}
    )


def _deployments(urls: dict[str, str]) -> list[Deployment]:
    ok = urls["ok"]
    return [
        _entry("gpt4", f"openai/{GPT4}", ok, api_key="replay-key"),
        _entry("llama", f"hosted_vllm/{LLAMA}", ok),
        _entry("nocost-config", f"openai/{NOCOST}", ok, input_cost_per_token=PRICE_IN, output_cost_per_token=PRICE_OUT),
        _entry("nocost-zero", f"openai/{NOCOST}", ok, input_cost_per_token=0, output_cost_per_token=0),
        _entry("nocost-bare", f"openai/{NOCOST}", ok),
        _entry("unknown-upstream", "openai/no-such-model", ok),
        _entry("errors", f"openai/{GPT4}", urls["errors"]),
        _entry("limited", f"openai/{GPT4}", urls["limited"]),
        _entry("broken", f"openai/{GPT4}", urls["broken"]),
        _entry("stalled", f"openai/{GPT4}", urls["stalled"], timeout=0.3, stream_timeout=0.3),
        _entry("closed", f"openai/{GPT4}", f"http://127.0.0.1:{_closed_port()}/v1"),
    ]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _outcomes(data_dir: Path, folder: Path) -> tuple[Path, Path, dict[str, dict[str, Any]]]:
    """RouterBench as an outcome table plus the NOCOST twin of one GPT4 prompt; the same prompt's rows alone
    (for the fault servers, which then start in no time); and the rows the tests ask for."""
    from pipelines.outcomes import import_source

    table, _ = import_source("routerbench", data_dir / "routerbench")
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for row in table.select(["prompt_id", "prompt", "model", "response", "cost_usd"]).to_pylist():
        first.setdefault((row["model"], row["prompt_id"]), row)  # the replay serves the first row per key
    chosen = next(
        row
        for (model, pid), row in first.items()
        if model == GPT4
        and len(row["response"] or "") > 400
        and (LLAMA, pid) in first
        and first[LLAMA, pid]["response"]
    )
    twin = table.filter(pc.and_(pc.equal(table["model"], GPT4), pc.equal(table["prompt_id"], chosen["prompt_id"])))
    twin_row = {**twin.slice(0, 1).to_pylist()[0], "model": NOCOST, "cost_usd": None, "cost_source": None}
    full = pa.concat_tables([table, pa.Table.from_pylist([twin_row], schema=table.schema)])
    pq.write_table(full, folder / "routerbench.parquet")
    pq.write_table(full.filter(pc.equal(full["prompt_id"], chosen["prompt_id"])), folder / "one-prompt.parquet")
    rows = {GPT4: chosen, LLAMA: first[LLAMA, chosen["prompt_id"]], NOCOST: {**chosen, "cost_usd": None}}
    return folder / "routerbench.parquet", folder / "one-prompt.parquet", rows


@pytest.fixture(scope="module")
def world(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    full, one_prompt, rows = _outcomes(data_dir, tmp_path_factory.mktemp("providers"))
    faults = {
        "ok": {},
        "errors": {"error_rate": 1.0},
        "limited": {"rate_limit_rate": 1.0, "retry_after_seconds": 7},
        "broken": {"broken_stream_rate": 1.0},
        "stalled": {"stall_rate": 1.0, "stall_seconds": 1.0},
    }
    with ExitStack() as stack, asyncio.Runner() as loop:
        urls = {
            name: stack.enter_context(running(ReplaySettings(outcomes=one_prompt if knobs else full, **knobs)))
            for name, knobs in faults.items()
        }
        world = World(loop, rows, urls)
        deployments = _deployments(urls)
        for name, fast in (("direct", True), ("litellm", False)):
            world.providers[name] = Providers(deployments, fast_path=fast, timeout_seconds=30.0, allowlist=LOOPBACK)
            world.run(world.providers[name].start())
        yield world
        for providers in world.providers.values():
            world.run(providers.aclose())


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def _stream(world: World, path: str, name: str, body: dict[str, Any]) -> tuple[list[bytes], StreamSummary | None]:
    chunks, summary, error = _stream_until_error(world, path, name, body)
    if error is not None:
        raise error
    return chunks, summary


def _stream_until_error(
    world: World, path: str, name: str, body: dict[str, Any]
) -> tuple[list[bytes], StreamSummary | None, Exception | None]:
    """The chunks that arrived, the summary, and the error the stream ended with (if it did)."""
    chunks: list[bytes] = []

    async def collect() -> tuple[ProviderStream, Exception | None]:
        stream = await world.providers[path].stream(name, body)
        try:
            async for chunk in stream:
                chunks.append(chunk)
        except Exception as exc:
            return stream, exc
        return stream, None

    stream, error = world.run(collect())
    return chunks, stream.summary, error


def _text(chunks: list[bytes]) -> str:
    payloads = [sse.parse(chunk) for chunk in chunks]
    return "".join(
        choice["delta"].get("content") or ""
        for payload in payloads
        if isinstance(payload, dict)
        for choice in payload["choices"]
    )


def _raises(world: World, call: Callable[[], Awaitable[Any]], error: type[Exception]) -> Any:
    with pytest.raises(error) as caught:
        world.run(call())
    return caught.value


@pytest.mark.parametrize(("name", "model", "provider"), [("gpt4", GPT4, "openai"), ("llama", LLAMA, "hosted_vllm")])
def test_complete_returns_the_recorded_answer_and_cost(world: World, path: str, name: str, model: str, provider: str):
    result = world.run(world.providers[path].complete(name, world.body(model)))
    data = orjson.loads(result.body)
    assert data["choices"][0]["message"]["content"] == world.answer(model)
    assert data["id"] == result.response_id and result.response_id.startswith("chatcmpl-")
    assert (result.path, result.provider, result.response_model, result.finish_reasons) == (
        path,
        provider,
        model,
        ("stop",),
    )
    assert result.cost == Cost(world.rows[model]["cost_usd"], "provider")
    # RouterBench records no token counts: the replay estimates them as ceil(chars / 4).
    assert result.input_tokens == estimate_tokens(world.rows[model]["prompt"].strip())
    assert result.output_tokens == estimate_tokens(world.answer(model))


def test_stream_joins_to_the_answer_and_drops_the_usage_chunk_nobody_asked_for(world: World, path: str) -> None:
    chunks, summary = _stream(world, path, "gpt4", world.body(stream=True))
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in chunks)
    assert chunks[-1] == sse.DONE_EVENT and len(chunks) > 4
    assert _text(chunks) == world.answer()
    assert not any(isinstance(p, dict) and p.get("usage") for p in map(sse.parse, chunks))
    assert summary is not None and summary.complete and not summary.usage_estimated
    assert (summary.path, summary.finish_reasons, summary.response_model) == (path, ("stop",), GPT4)
    assert summary.cost == Cost(world.rows[GPT4]["cost_usd"], "provider")
    assert summary.output_tokens == estimate_tokens(world.answer())
    assert summary.response_id == orjson.loads(chunks[0][6:])["id"]


def test_stream_forwards_the_usage_chunk_when_asked(world: World, path: str) -> None:
    body = world.body(stream=True, stream_options={"include_usage": True})
    chunks, summary = _stream(world, path, "gpt4", body)
    usage = [p["usage"] for p in map(sse.parse, chunks) if isinstance(p, dict) and p.get("usage")]
    assert len(usage) == 1 and usage[0]["cost"] == world.rows[GPT4]["cost_usd"]
    assert summary is not None and summary.input_tokens == usage[0]["prompt_tokens"]
    assert _text(chunks) == world.answer()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nocost-config", "config"),
        ("nocost-zero", "zero_price"),
        ("nocost-bare", "unpriced"),
    ],
)
def test_without_usage_cost_the_config_prices_apply(world: World, path: str, name: str, expected: str) -> None:
    result = world.run(world.providers[path].complete(name, world.body(NOCOST)))
    assert "cost" not in orjson.loads(result.body)["usage"]
    priced = result.input_tokens * PRICE_IN + result.output_tokens * PRICE_OUT
    usd = {"config": priced, "zero_price": 0.0, "unpriced": 0.0}[expected]
    assert result.cost.source == expected and result.cost.usd == pytest.approx(usd)
    _, summary = _stream(world, path, name, world.body(NOCOST, stream=True))
    assert summary is not None and summary.cost == result.cost


def test_upstream_500_is_a_502_naming_the_deployment(world: World, path: str) -> None:
    providers = world.providers[path]
    for call in (lambda: providers.complete("errors", world.body()), lambda: providers.stream("errors", world.body())):
        error = _raises(world, call, UpstreamError)
        assert error.status_code() == 502
        assert "deployment 'errors'" in error.message and "Injected upstream error" in error.message


def test_upstream_429_keeps_retry_after(world: World, path: str) -> None:
    providers = world.providers[path]
    for call in (
        lambda: providers.complete("limited", world.body()),
        lambda: providers.stream("limited", world.body()),
    ):
        error = _raises(world, call, UpstreamRateLimitError)
        assert (error.status_code(), error.headers()) == (429, {"Retry-After": "7"})
        assert "rate-limited" in error.message and "Injected rate limit" in error.message


def test_upstream_404_passes_on_with_its_message(world: World, path: str) -> None:
    error = _raises(
        world, lambda: world.providers[path].complete("unknown-upstream", world.body()), UpstreamStatusError
    )
    assert error.status_code() == 404
    assert "'no-such-model' is not served by this replay provider" in error.message


def test_closed_port_is_an_upstream_error(world: World, path: str) -> None:
    error = _raises(world, lambda: world.providers[path].complete("closed", world.body()), UpstreamError)
    assert error.status_code() == 502 and "deployment 'closed'" in error.message
    assert ("could not be reached" if path == "direct" else "Connection error") in error.message


def test_deployment_timeout_is_a_504(world: World, path: str) -> None:
    error = _raises(world, lambda: world.providers[path].complete("stalled", world.body()), UpstreamTimeoutError)
    assert error.status_code() == 504 and "deployment 'stalled'" in error.message


def test_broken_stream_raises_after_summarising_what_arrived(world: World, path: str) -> None:
    chunks, summary, error = _stream_until_error(world, path, "broken", world.body(stream=True))
    assert isinstance(error, UpstreamError) and "deployment 'broken'" in error.message
    text = _text(chunks)
    assert text and world.answer().startswith(text) and len(text) < len(world.answer())
    assert summary is not None and not summary.complete and summary.usage_estimated
    assert summary.output_tokens == math.ceil(len(text) / 4)
    assert summary.input_tokens == estimate_tokens(world.rows[GPT4]["prompt"])
    # No usage means no provider cost: GPT4 is in LiteLLM's price map.
    expected = summary.input_tokens * PRICE_IN + summary.output_tokens * PRICE_OUT
    assert summary.cost.source == "price_map" and summary.cost.usd == pytest.approx(expected)


def test_a_client_leaving_early_closes_the_stream_with_a_partial_summary(world: World, path: str) -> None:
    async def leave(after: int) -> tuple[list[bytes], StreamSummary | None]:
        stream = await world.providers[path].stream("gpt4", world.body(stream=True))
        chunks = [await stream.__anext__() for _ in range(after)]
        await stream.aclose()
        return chunks, stream.summary

    chunks, summary = world.run(leave(3))
    assert summary is not None and not summary.complete and summary.usage_estimated
    assert summary.output_tokens == math.ceil(len(_text(chunks)) / 4)
    _, untouched = world.run(leave(0))
    assert untouched is not None and (untouched.output_tokens, untouched.complete) == (0, False)


def test_embeddings_pass_through(world: World, path: str) -> None:
    texts = ["packet routers", "a second input"]
    result = world.run(world.providers[path].embed("gpt4", {"model": "gpt4", "input": texts}))
    data = orjson.loads(result.body)
    assert [item["embedding"] for item in data["data"]] == [vector(text) for text in texts]
    assert result.input_tokens == data["usage"]["prompt_tokens"] == sum(map(estimate_tokens, texts))
    assert (result.output_tokens, result.finish_reasons, result.path) == (0, (), path)
    assert result.cost.source == "price_map" and result.cost.usd == pytest.approx(result.input_tokens * PRICE_IN)


def test_litellm_refuses_parameters_that_would_steer_it(world: World) -> None:
    body = world.body(api_base="http://attacker.example/v1")
    error = _raises(world, lambda: world.providers["litellm"].complete("gpt4", body), ForbiddenParameterError)
    assert error.param == "api_base"


@pytest.mark.parametrize(
    "strategy",
    ["simple-shuffle", "least-busy", "latency-based-routing", "cost-based-routing", "usage-based-routing"],
)
def test_shared_names_go_through_litellm_routing(world: World, strategy: str) -> None:
    ok = world.urls["ok"]
    pair = [_entry("pair", f"openai/{GPT4}", ok, api_key="k"), _entry("pair", f"hosted_vllm/{LLAMA}", ok)]
    providers = Providers([*pair, _entry("solo", f"openai/{GPT4}", ok)], routing_strategy=strategy, allowlist=LOOPBACK)
    assert providers.names == ("pair", "solo") and providers.deployments("pair") == tuple(pair)
    assert (providers.path("pair"), providers.path("solo")) == ("litellm", "direct")
    world.run(providers.start())
    try:
        results = [world.run(providers.complete("pair", world.body(GPT4))) for _ in range(4)]
    finally:
        world.run(providers.aclose())
    # Both deployments recorded answers for this prompt; whichever LiteLLM picked, the text is that model's.
    assert {r.response_model for r in results} <= {GPT4, LLAMA}
    for result in results:
        content = orjson.loads(result.body)["choices"][0]["message"]["content"]
        assert content == world.answer(result.response_model)
        assert result.provider == ("openai" if result.response_model == GPT4 else "hosted_vllm")


def test_deployment_reads_the_litellm_entry() -> None:
    entry = {
        "model_name": "m",
        "litellm_params": {"model": "hosted_vllm/meta/llama-2-70b-chat", "api_base": "http://h:1/v1/", "api_key": "k"},
        "model_info": {"input_cost_per_token": "1e-6", "output_cost_per_token": 2e-6},
    }
    deployment = Deployment.from_entry(entry)
    assert (deployment.provider, deployment.upstream_model) == ("hosted_vllm", "meta/llama-2-70b-chat")
    assert (deployment.api_base, deployment.api_key, deployment.direct) == ("http://h:1/v1", "k", True)
    assert deployment.prices is not None and deployment.prices.cost(10, 1) == pytest.approx(1.2e-5)
    bare = Deployment.from_entry({"model_name": "g", "litellm_params": {"model": "gpt-4o"}})
    assert (bare.provider, bare.upstream_model, bare.direct, bare.prices) == ("openai", "gpt-4o", False, None)
    headers = {**entry, "litellm_params": {**entry["litellm_params"], "extra_headers": {"x": "1"}}}
    assert not Deployment.from_entry(headers).direct
    anthropic = {"model_name": "a", "litellm_params": {"model": "anthropic/claude-3", "api_base": "http://h/v1"}}
    assert not Deployment.from_entry(anthropic).direct


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"litellm_params": {"model": "openai/x"}}, "needs `model_name`"),
        ({"model_name": "m"}, "needs `litellm_params.model`"),
        ({"model_name": "m", "litellm_params": {"api_base": "http://h"}}, "needs `litellm_params.model`"),
        ({"model_name": "m", "litellm_params": {"model": "openai/x", "input_cost_per_token": -1}}, "non-negative"),
        ({"model_name": "m", "litellm_params": {"model": "openai/x", "output_cost_per_token": "cheap"}}, "'cheap'"),
        ("openai/x", "must be a mapping"),
    ],
)
def test_malformed_entries_are_config_errors(entry: Any, says: str) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        Deployment.from_entry(entry, "model_list[3]")
    assert says in str(caught.value)


def test_request_cost_prefers_provider_then_config_then_price_map() -> None:
    priced = Deployment.from_entry(
        {"model_name": "p", "litellm_params": {"model": "openai/x", "input_cost_per_token": 1e-6}}
    )
    bare = Deployment.from_entry({"model_name": "b", "litellm_params": {"model": "openai/gpt-4-1106-preview"}})

    def price_map(model: str, provider: str, tokens_in: int, tokens_out: int) -> float | None:
        return {"gpt-4-1106-preview": 0.5, "free": 0.0}.get(model)

    assert request_cost(priced, 10, 20, provider_cost=0.25, price_map=price_map) == Cost(0.25, "provider")
    configured = request_cost(priced, 10, 20, price_map=price_map)
    assert configured.source == "config" and configured.usd == pytest.approx(1e-5)
    assert request_cost(bare, 10, 20, price_map=price_map) == Cost(0.5, "price_map")
    assert request_cost(bare, 10, 20) == Cost(0.0, "unpriced")
    free = Deployment.from_entry({"model_name": "f", "litellm_params": {"model": "openai/free"}})
    assert request_cost(free, 10, 20, price_map=price_map) == Cost(0.0, "zero_price")
    assert request_cost(free, 0, 0, price_map=price_map) == Cost(0.0, "price_map")


def test_bundled_price_map_knows_gpt4_and_not_strangers(world: World) -> None:
    # `world` has started LiteLLM routers over "openai/no-such-model": its registration must not price it.
    from serving.providers.price_map import BundledPriceMap

    price_map_cost = BundledPriceMap()
    only_gpt4 = BundledPriceMap([(GPT4, "openai")])
    assert only_gpt4(GPT4, "openai", 21, 214) == price_map_cost(GPT4, "openai", 21, 214)
    assert only_gpt4("gpt-3.5-turbo", "openai", 21, 214) is None
    assert price_map_cost(GPT4, "openai", 21, 214) == pytest.approx(21 * PRICE_IN + 214 * PRICE_OUT)
    assert price_map_cost("no-such-model", "openai", 21, 214) is None
    assert price_map_cost(LLAMA, "hosted_vllm", 21, 214) is None


def test_sse_events_survive_any_cut() -> None:
    events = [b'data: {"a": 1}\n\n', b": keep-alive\n\n", b'data: {"b":\ndata: 2}\r\n\r\n', sse.DONE_EVENT]
    raw = b"".join(events)

    async def split(size: int) -> list[bytes]:
        async def chunks() -> Any:
            for start in range(0, len(raw), size):
                yield raw[start : start + size]

        return [event async for event in sse.events(chunks())]

    for size in (1, 3, 7, len(raw)):
        assert asyncio.run(split(size)) == events
    assert [sse.parse(e) for e in events] == [{"a": 1}, None, {"b": 2}, sse.DONE]


def test_prompt_ids_match_the_replay_index(world: World) -> None:
    # Guards the fixture: the chosen prompt is the one the replay looks up.
    row = world.rows[GPT4]
    assert prompt_id(row["prompt"]) == row["prompt_id"]
