"""The benchmark harness itself (not its numbers): the upstream stub answers like an OpenAI server, the load
drivers count what they sent, and the reports derive their figures from what was measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from benchmarks import gateway_overhead, hot_reload, memory
from benchmarks.load import Answer, interleaved_latencies, paced, saturate
from benchmarks.targets import Target, upstream_stub

MODELS = ["model-a", "model-b"]


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with upstream_stub(tmp_path_factory.mktemp("stub"), MODELS) as target:
        yield target


def test_the_stub_speaks_openai(stub: Target) -> None:
    client = openai.OpenAI(base_url=f"{stub.url}/v1", api_key="unused")
    answer = client.chat.completions.create(model="model-b", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "model-b" and answer.choices[0].message.content == "ok"
    assert answer.usage is not None and answer.usage.total_tokens == 13
    assert [m.id for m in client.models.list()] == MODELS


def test_interleaved_latencies_time_every_round_of_every_target(stub: Target) -> None:
    other = Target("again", stub.url, "model-a", stub.pid, {})
    times, errors = interleaved_latencies([stub, other], "hello", requests=25, warmup=5)
    assert {name: len(series) for name, series in times.items()} == {"direct": 25, "again": 25}
    assert errors == {"direct": 0, "again": 0}
    assert all(t > 0 for series in times.values() for t in series)


def test_saturation_and_paced_load_count_their_requests(stub: Target) -> None:
    run = saturate(stub, "hello", connections=4, seconds=1)
    assert run.requests > 0 and run.errors == 0 and run.cpu_seconds > 0
    assert run.rps_per_core == pytest.approx(run.requests / run.cpu_seconds)
    ticks: list[float] = []
    answers = paced(stub, ["a", "b"], rate=50, seconds=1, on_tick=ticks.append)
    assert len(answers) == 50 and all(a.status == 200 for a in answers)
    assert [a.sent for a in answers] == sorted(a.sent for a in answers)
    assert all(a.received >= a.sent for a in answers)


def test_load_goes_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        interleaved_latencies([Target("far", "http://192.0.2.1:80", "m", 0, {})], "x", 1, 0)


def test_profile_summary_attributes_samples_to_packages() -> None:
    collapsed = "\n".join(
        [
            "main (a.py:1);handle (serving/routes/chat_completions.py:40) 6",
            "main (a.py:1);select (selectors.py:468) 3",
            "main (a.py:1);encode (orjson/__init__.py:1) 1",
        ]
    )
    profile = gateway_overhead._summarise(collapsed)
    shares = dict(profile.by_package)
    assert profile.samples == 10
    assert shares["routeiq (serving, routers, features)"] == pytest.approx(60.0)
    assert shares["asyncio / selectors / threads"] == pytest.approx(30.0)
    assert sum(shares.values()) == pytest.approx(100.0)


def test_hot_reload_switch_time_is_from_promotion_to_the_first_new_answer() -> None:
    options = hot_reload.Options(Path("unused"), rate=10, seconds=3, poll_seconds=1.0)
    answers = [
        Answer(0.0, 0.1, 200, {hot_reload.VERSION_HEADER: "1"}),
        Answer(1.0, 2.6, 200, {hot_reload.VERSION_HEADER: "2"}),
        Answer(1.1, 2.7, 200, {hot_reload.VERSION_HEADER: "1"}),
        Answer(1.2, 2.8, 502, {}),
    ]
    result = hot_reload._result(options, answers, "1", "2", promoted_at=1.5)
    assert result.switch_seconds == pytest.approx(1.1)
    assert result.old_after_new == 1 and result.failures == 1 and result.requests == 4
    assert "missed: 1 failed" in hot_reload.render(result)


def test_memory_growth_is_measured_after_the_warm_up() -> None:
    samples = [(float(t), 100.0 + (50.0 if t < 2 else 0.0) + t) for t in range(10)]
    result = memory.Result("knn", 200.0, 10.0, 90.0, samples, 2000, 0)
    assert result.warm_mb == pytest.approx(102.0)
    assert result.end_mb == pytest.approx(107.0)
    assert result.growth == pytest.approx(107.0 / 102.0 - 1)
    assert result.peak_mb == pytest.approx(151.0)
    assert "| +4.9% |" in memory.render(result)
