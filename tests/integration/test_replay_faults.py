"""The replay provider's latency model and injected faults, each on its own real server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openai import OpenAI

from features.prompt import prompt_id
from features.schema import OUTCOME_SCHEMA
from serving.replay import Latency, LatencyModel, ReplaySettings, running
from serving.replay.exceptions import ReplaySetupError

SLOW, FAST = "slow-model", "fast-model"
PROMPT = "Explain in one sentence why the sky is blue."
ANSWER = "Sunlight scatters off air molecules, and the short blue wavelengths scatter the most."
MESSAGES = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {"prompt_id": prompt_id(PROMPT), "prompt": PROMPT, "task": "t", "model": model, "response": ANSWER}
        | {"source": "unit", "split": "test", "cost_usd": 0.001, "output_tokens": 17}
        for model in (SLOW, FAST)
    ]
    path = tmp_path_factory.mktemp("faults") / "outcomes.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=OUTCOME_SCHEMA), path)
    return path


@pytest.fixture
def sdk() -> Iterator[Callable[..., OpenAI]]:
    """Call as `sdk(settings, **client_kwargs)`: a client of a fresh server, both closed after the test."""
    with ExitStack() as stack:

        def start(settings: ReplaySettings, **kwargs: Any) -> OpenAI:
            url = stack.enter_context(running(settings))
            return stack.enter_context(OpenAI(base_url=url, api_key="replay", max_retries=0, **kwargs))

        yield start


def _ask(client: OpenAI, model: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=MESSAGES, **kwargs)  # type: ignore[arg-type]


def test_latency_override_delays_the_answer(outcomes: Path, sdk: Any) -> None:
    # Default 0 ms, 200 ms for SLOW only: were overrides ignored, the call would not wait.
    client = sdk(ReplaySettings(outcomes=outcomes, latency=LatencyModel(models={SLOW: Latency(ttft_ms=200.0)})))
    started = time.perf_counter()
    answer = _ask(client, SLOW)
    assert time.perf_counter() - started >= 0.2
    assert answer.choices[0].message.content == ANSWER


def test_error_rate_one_makes_every_call_a_500(outcomes: Path, sdk: Any) -> None:
    client = sdk(ReplaySettings(outcomes=outcomes, error_rate=1.0))
    for stream in (False, True, False):
        with pytest.raises(openai.InternalServerError) as caught:
            _ask(client, FAST, stream=stream)
        assert (caught.value.status_code, caught.value.code) == (500, "upstream_error")


def test_rate_limit_rate_one_is_429_with_retry_after(outcomes: Path, sdk: Any) -> None:
    client = sdk(ReplaySettings(outcomes=outcomes, rate_limit_rate=1.0, retry_after_seconds=7))
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(client, FAST)
    assert (caught.value.status_code, caught.value.code) == (429, "rate_limit_exceeded")
    assert caught.value.response.headers["retry-after"] == "7"


def test_broken_stream_ends_early_without_finish_or_done(outcomes: Path, sdk: Any) -> None:
    client = sdk(ReplaySettings(outcomes=outcomes, broken_stream_rate=1.0))
    # The SDK raises nothing: the stream just ends, without a finish_reason and without usage.
    chunks = list(_ask(client, FAST, stream=True, stream_options={"include_usage": True}))
    assert chunks and all(chunk.choices and chunk.choices[0].finish_reason is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert ANSWER.startswith(text) and 0 < len(text) < len(ANSWER)
    body = {"model": FAST, "messages": MESSAGES, "stream": True}
    raw = httpx.post(f"{client.base_url}chat/completions", json=body, timeout=5)
    assert raw.status_code == 200 and raw.text.startswith("data: ")
    assert "[DONE]" not in raw.text and '"finish_reason":"stop"' not in raw.text
    assert _ask(client, FAST).choices[0].message.content == ANSWER  # non-streamed answers are never cut


def test_stall_makes_a_short_timeout_client_time_out(outcomes: Path, sdk: Any) -> None:
    client = sdk(ReplaySettings(outcomes=outcomes, stall_rate=1.0, stall_seconds=1.0), timeout=0.25)
    with pytest.raises(openai.APITimeoutError):
        _ask(client, FAST)


def test_a_bad_outcomes_file_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_text("not parquet")
    with (
        pytest.raises(ReplaySetupError, match="did not start"),
        running(ReplaySettings(outcomes=tmp_path / "bad.parquet")),
    ):
        pass
