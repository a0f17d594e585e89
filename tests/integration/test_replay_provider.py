"""The replay provider as a real uvicorn server on 127.0.0.1, driven by the openai SDK and raw httpx."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openai import AsyncOpenAI, OpenAI

from features.prompt import estimate_tokens, prompt_id
from features.schema import OUTCOME_SCHEMA, conform
from serving.replay import ReplaySettings, running
from serving.replay.completion import PROMPT_ID_HEADER, STREAM_PIECES

ALPHA, BETA, GAMMA = "alpha/large-1", "beta-small", "gamma"
ADD = "What is 2 + 2? Answer with one sentence."
HAIKU = "Write a haiku about packet routers."
ALPHA_ADD = "Two plus two equals four, which is the only answer an honest calculator will ever give you."
BETA_ADD = "4"
ALPHA_HAIKU = "Packets find their way\nthrough a maze of blinking lights\nrouted home at last"
BETA_HAIKU = "Bits hop, tables turn;\na router hums in the dark."
USER = [{"role": "user", "content": ADD}]
START_TIMEOUT_SECONDS = 60

# (prompt, model, response, cost_usd, input_tokens, output_tokens); GAMMA has no HAIKU row and no ADD text.
ROWS = [
    (ADD, ALPHA, ALPHA_ADD, 0.0123, 31, 19),
    (ADD, BETA, BETA_ADD, 0.0001, None, None),
    (ADD, GAMMA, None, 0.002, None, None),
    (HAIKU, ALPHA, ALPHA_HAIKU, 0.0456, 9, 21),
    (HAIKU, BETA, BETA_HAIKU, None, None, None),
]


def _outcomes(path: Path) -> Path:
    rows = [
        {
            "prompt_id": prompt_id(prompt),
            "prompt": prompt,
            "task": "test",
            "model": model,
            "quality": 1.0,
            "cost_usd": cost,
            "cost_source": "recorded" if cost is not None else None,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "response": response,
            "source": "unit",
            "split": "test",
        }
        for prompt, model, response, cost, tokens_in, tokens_out in ROWS
    ]
    pq.write_table(conform(pa.Table.from_pylist(rows, schema=OUTCOME_SCHEMA)), path)
    return path


def _client(base_url: str, **kwargs: Any) -> OpenAI:
    return OpenAI(base_url=base_url, api_key="replay", max_retries=0, **kwargs)


def _ask(client: OpenAI, model: str, prompt: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], **kwargs)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _outcomes(tmp_path_factory.mktemp("replay") / "outcomes.parquet")


@pytest.fixture(scope="module")
def base_url(outcomes: Path) -> Iterator[str]:
    with running(ReplaySettings(outcomes=outcomes)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[OpenAI]:
    with _client(base_url) as sdk:
        yield sdk


def test_models_lists_exactly_the_models_in_the_file(client: OpenAI) -> None:
    models = client.models.list()
    assert [model.id for model in models.data] == sorted([ALPHA, BETA, GAMMA])
    assert {model.object for model in models.data} == {"model"}


def test_answer_is_the_recorded_text_with_recorded_usage_and_cost(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=ALPHA, messages=[{"role": "user", "content": ADD}])
    completion = raw.parse()
    assert raw.headers[PROMPT_ID_HEADER] == prompt_id(ADD)
    assert completion.object == "chat.completion"
    assert completion.model == ALPHA
    assert completion.id.startswith("chatcmpl-") and len(completion.id) > len("chatcmpl-")
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        ALPHA_ADD,
        "stop",
    )
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (31, 19)
    assert completion.usage.total_tokens == 50
    assert completion.usage.model_extra == {"cost": 0.0123}


def test_unrecorded_tokens_are_estimated_from_prompt_and_answer(client: OpenAI) -> None:
    usage = _ask(client, BETA, ADD).usage
    # ceil(chars / 4): the prompt has 40 characters, the answer "4" has 1.
    assert (len(ADD), len(BETA_ADD)) == (40, 1)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 1, 11)
    assert usage.prompt_tokens == estimate_tokens(ADD) == math.ceil(len(ADD) / 4)
    assert usage.model_extra["cost"] == 0.0001


def test_null_response_is_an_empty_answer_and_null_cost_omits_cost(client: OpenAI) -> None:
    empty = _ask(client, GAMMA, ADD)
    assert empty.choices[0].message.content == ""
    assert (empty.usage.completion_tokens, empty.usage.model_extra["cost"]) == (0, 0.002)
    no_cost = _ask(client, BETA, HAIKU)
    assert no_cost.choices[0].message.content == BETA_HAIKU
    assert no_cost.usage.completion_tokens == math.ceil(len(BETA_HAIKU) / 4)
    assert "cost" not in no_cost.usage.model_dump()


def test_prompt_is_the_last_user_message_and_ids_are_unique(client: OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "An earlier question"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "t", "type": "function"}]},
        {"role": "user", "content": [{"type": "text", "text": f"  {HAIKU}\n"}]},
    ]
    first = client.chat.completions.create(model=ALPHA, messages=messages, temperature=0, tools=[])
    second = client.chat.completions.create(model=ALPHA, messages=messages)
    assert first.choices[0].message.content == second.choices[0].message.content == ALPHA_HAIKU
    assert first.id != second.id


def test_unknown_model_is_404_model_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _ask(client, "no-such-model", ADD)
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message and "GET /v1/models" in caught.value.message


@pytest.mark.parametrize(("model", "prompt"), [(GAMMA, HAIKU), (ALPHA, "A prompt nobody recorded")])
def test_unrecorded_prompt_is_404_prompt_not_recorded(client: OpenAI, model: str, prompt: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _ask(client, model, prompt)
    assert caught.value.code == "prompt_not_recorded"
    assert model in caught.value.message and prompt_id(prompt) in caught.value.message


def test_stream_reassembles_the_text_and_ends_with_usage(client: OpenAI) -> None:
    chunks = list(_ask(client, ALPHA, ADD, stream=True, stream_options={"include_usage": True}))
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].model == ALPHA
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert 2 <= len(pieces) <= STREAM_PIECES
    assert "".join(pieces) == ALPHA_ADD
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop" and set(finish[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.model_extra) == (
        31,
        19,
        {"cost": 0.0123},
    )


def test_stream_without_include_usage_has_no_usage_chunk(client: OpenAI) -> None:
    chunks = list(_ask(client, BETA, HAIKU, stream=True))
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == BETA_HAIKU
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_raw_stream_is_server_sent_events_ending_with_done(base_url: str) -> None:
    body = {"model": BETA, "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    response = httpx.post(f"{base_url}/chat/completions", json=body, timeout=5)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers[PROMPT_ID_HEADER] == prompt_id(ADD)
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(event.startswith("data: {") for event in events[:-2])
    assert '"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11,"cost":0.0001}' in events[-3]


def test_async_client_concurrent_requests(base_url: str) -> None:
    async def run() -> tuple[list[str | None], str]:
        async with AsyncOpenAI(base_url=base_url, api_key="replay", max_retries=0) as sdk:
            asks = [(ALPHA, ADD), (BETA, ADD), (ALPHA, HAIKU), (BETA, HAIKU)]
            answers = await asyncio.gather(
                *(sdk.chat.completions.create(model=m, messages=[{"role": "user", "content": p}]) for m, p in asks)
            )
            stream = await sdk.chat.completions.create(
                model=ALPHA, messages=[{"role": "user", "content": HAIKU}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return [a.choices[0].message.content for a in answers], text

    contents, streamed = asyncio.run(run())
    assert contents == [ALPHA_ADD, BETA_ADD, ALPHA_HAIKU, BETA_HAIKU]
    assert streamed == ALPHA_HAIKU


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "beta-small", "messages": [', None),
        ({"model": BETA, "messages": USER, "stream": 0}, "stream"),
        ({"model": BETA, "messages": USER, "stream": "yes"}, "stream"),
        ({"model": BETA, "messages": []}, "messages"),
        ({"model": BETA}, "messages"),
        ({"model": BETA, "messages": [{"content": ADD}]}, "messages.0.role"),
        ({"model": BETA, "messages": [{"role": "robot", "content": ADD}]}, "messages.0.role"),
        ({"model": 7, "messages": USER}, "model"),
        ([USER], None),
    ],
)
def test_malformed_requests_are_400_never_422(base_url: str, body: Any, param: str | None) -> None:
    url = f"{base_url}/chat/completions"
    content = body if isinstance(body, bytes) else None
    response = httpx.post(url, content=content, json=None if content else body, timeout=5)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_request_error",
        param,
    )
    assert "fix it" in error["message"] or "send a JSON object" in error["message"]


def test_unknown_routes_get_openai_shaped_errors(base_url: str) -> None:
    missing = httpx.post(f"{base_url}/audio/speech", json={}, timeout=5)
    wrong_method = httpx.get(f"{base_url}/chat/completions", timeout=5)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_route")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.slow
def test_replays_real_routerbench_answers(data_dir: Path, tmp_path: Path) -> None:
    from pipelines.outcomes import import_source

    table, _ = import_source("routerbench", data_dir / "routerbench")
    pq.write_table(table, tmp_path / "routerbench.parquet")
    first_per_model: dict[str, dict[str, Any]] = {}
    for row in table.slice(0, 5000).to_pylist():
        first_per_model.setdefault(row["model"], row)
    with running(ReplaySettings(outcomes=tmp_path / "routerbench.parquet")) as url, _client(url) as sdk:
        assert [model.id for model in sdk.models.list().data] == sorted(set(table.column("model").to_pylist()))
        for model, row in sorted(first_per_model.items()):
            answer = _ask(sdk, model, row["prompt"])
            assert answer.choices[0].message.content == (row["response"] or "")
            assert answer.usage.model_extra.get("cost") == row["cost_usd"]
            assert answer.usage.prompt_tokens == (row["input_tokens"] or estimate_tokens(row["prompt"]))
    assert len(first_per_model) == 11


def test_embeddings_are_deterministic_unit_vectors_with_usage(client: OpenAI, base_url: str) -> None:
    # The SDK asks for base64 unless told otherwise; both encodings must give the same floats.
    texts = [ADD, HAIKU, ADD]
    as_base64 = client.embeddings.create(model=BETA, input=texts)
    as_floats = client.embeddings.create(model=BETA, input=texts, encoding_format="float")
    vectors = [item.embedding for item in as_floats.data]
    assert [item.index for item in as_floats.data] == [0, 1, 2] and as_floats.model == BETA
    assert all(len(v) == 16 and math.isclose(sum(x * x for x in v), 1.0) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    for decoded, floats in zip(as_base64.data, vectors, strict=True):
        assert decoded.embedding == pytest.approx(floats, abs=1e-6)  # float32 on the wire
    tokens = 2 * estimate_tokens(ADD) + estimate_tokens(HAIKU)
    assert as_floats.usage.prompt_tokens == as_floats.usage.total_tokens == tokens
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="no-such-model", input="x")
    assert caught.value.code == "model_not_found"
    empty = httpx.post(f"{base_url}/embeddings", json={"model": BETA, "input": []}, timeout=5)
    assert (empty.status_code, empty.json()["error"]["param"]) == (400, "input")


def test_the_command_prints_where_it_listens_and_what_it_serves(outcomes: Path) -> None:
    # --port 0: the line is the only way to learn the port, so a script can rely on it.
    command = [sys.executable, "-m", "pipelines.cli", "replay-provider", "--outcomes", str(outcomes), "--port", "0"]
    repo = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
    try:
        reader.start()
        reader.join(START_TIMEOUT_SECONDS)
        assert lines, "the replay provider printed nothing within the start timeout"
        found = re.fullmatch(r"replay provider listening on (http://127\.0\.0\.1:\d+/v1): (.*)\n", lines[0])
        assert found, lines[0]
        served = f"3 models ({ALPHA}, {BETA}, {GAMMA}), 2 prompts from {outcomes}; GET /v1/models"
        assert found.group(2).startswith(served), lines[0]
        with _client(found.group(1)) as sdk:
            assert [model.id for model in sdk.models.list().data] == [ALPHA, BETA, GAMMA]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=START_TIMEOUT_SECONDS)
    assert "Traceback" not in stderr
