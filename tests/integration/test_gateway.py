"""The real gateway and the replay provider on loopback, driven by the official openai SDK: routing by
registered routers, spans in OTLP-JSON files, feedback, recorded costs, hot reload while requests flow."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pyarrow as pa
import pytest
import yaml  # type: ignore[import-untyped]
from mlflow import MlflowClient
from openai import AsyncOpenAI, OpenAI

from features import schema
from features.prompt import prompt_id
from pipelines.outcomes import first_prompts, import_source, read_outcomes, write_outcomes
from pipelines.train import train
from registry.promotion import promote
from registry.versions import get_version
from serving.config import load_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans

PER_SPLIT = {schema.TRAIN: 120, schema.VALID: 30, schema.TEST: 40}
MASTER_KEY = "sk-routeiq-test-master"
POLL_SECONDS = 0.3


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def outcomes(data_dir: Path, mlflow_workspace: Path) -> pa.Table:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    write_outcomes(first_prompts(table, PER_SPLIT), mlflow_workspace / "outcomes.parquet")
    return read_outcomes(mlflow_workspace / "outcomes.parquet")


@pytest.fixture(scope="module")
def versions(outcomes: pa.Table, mlflow_workspace: Path) -> dict[str, int]:
    """Registered versions by family; nothing is promoted yet."""
    results = train(
        mlflow_workspace / "outcomes.parquet",
        ["strongest", "cheapest", "knn"],
        trials=1,
        seed=0,
        progress=lambda line: None,
    )
    client = MlflowClient()
    found = {v.family: v.version for v in (get_version(client, n) for n in range(1, len(results) + 1))}
    assert set(found) == {"strongest", "cheapest", "knn"}
    return found


@pytest.fixture(scope="module")
def models(outcomes: pa.Table) -> list[str]:
    return sorted(set(outcomes[schema.MODEL].to_pylist()))


@pytest.fixture(scope="module")
def prompts(outcomes: pa.Table) -> list[str]:
    test = outcomes.filter(pa.compute.equal(outcomes[schema.SPLIT], schema.TEST))
    return list(dict.fromkeys(test[schema.PROMPT].to_pylist()))


@pytest.fixture(scope="module")
def recorded(outcomes: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r[schema.PROMPT_ID], r[schema.MODEL]): r for r in outcomes.to_pylist()}


@pytest.fixture(scope="module")
def upstream(outcomes: pa.Table, mlflow_workspace: Path) -> Iterator[str]:
    with replay_running(ReplaySettings(outcomes=mlflow_workspace / "outcomes.parquet")) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(
    versions: dict[str, int],
    models: list[str],
    mlflow_workspace: Path,
    upstream: str,
    monkeypatch_module: pytest.MonkeyPatch,
) -> Iterator[str]:
    monkeypatch_module.setenv("ROUTEIQ_TEST_MASTER_KEY", MASTER_KEY)
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "sk-up"}}
            for m in models
        ],
        "router_settings": {
            "routing_strategy": "llmrouter-any",
            "routing_strategy_args": {"hot_reload": True, "reload_interval": POLL_SECONDS},
        },
        "general_settings": {"master_key": "os.environ/ROUTEIQ_TEST_MASTER_KEY"},
        "routeiq_settings": {
            "routing": {"max_cost_weight": 5000.0, "seed": 0, "budget_ms": 30_000.0},  # no fallback under load
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "telemetry": {
                "directory": str(mlflow_workspace / "traces"),
                "capture_prompts": True,
                "export_interval_seconds": 0.1,
            },
        },
    }
    path = mlflow_workspace / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    with running(load_config(path)) as url:
        yield url


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def client(gateway: str) -> OpenAI:
    return OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)


def admin(gateway: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway}/admin/router", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def serving_version(gateway: str, version: int) -> bool:
    return bool(admin(gateway)["champion"]["version"] == version)


def ask(client: OpenAI, prompt: str, model: str = "auto", **extra: Any) -> tuple[Any, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **extra
    )
    return raw.parse(), raw.headers


def spans_by_response(traces: Path) -> dict[str, Any]:
    if not traces.exists():  # created by the first export, which runs in the background
        return {}
    return {s.attributes[a.RESPONSE_ID]: s for s in read_spans(traces) if a.RESPONSE_ID in s.attributes}


def test_without_a_registered_router_the_fallback_serves_and_says_so(
    gateway: str, client: OpenAI, prompts: list[str], models: list[str]
) -> None:
    status = admin(gateway)
    assert status["mode"] == "fallback"
    assert status["champion"]["last_poll"]["status"] == "empty"
    assert httpx.get(f"{gateway}/_health/ready").json()["router"]["mode"] == "fallback"
    completion, headers = ask(client, prompts[0])
    assert headers["x-routeiq-decision"] == "fallback"
    assert headers["x-routeiq-router-version"] == "none"
    assert headers["x-routeiq-model"] in models
    assert completion.choices[0].message.content


def test_a_promoted_router_is_hot_loaded_and_routes(
    gateway: str, client: OpenAI, versions: dict[str, int], prompts: list[str], recorded: dict[tuple[str, str], Any]
) -> None:
    promote(MlflowClient(), get_version(MlflowClient(), versions["knn"]), force=True)
    wait_for(lambda: serving_version(gateway, versions["knn"]), what="the knn version to load")
    status = admin(gateway)
    assert status["mode"] == "router" and status["champion"]["family"] == "knn"
    assert status["champion"]["last_poll"]["status"] in {"loaded", "unchanged"}
    chosen = set()
    for prompt in prompts[:6]:
        completion, headers = ask(client, prompt)
        model = headers["x-routeiq-model"]
        chosen.add(model)
        assert headers["x-routeiq-router-version"] == str(versions["knn"])
        assert headers["x-routeiq-decision"] == "router"
        row = recorded[(prompt_id(prompt), model)]
        assert completion.choices[0].message.content == row[schema.RESPONSE]
    cheap, _ = ask(client, prompts[0], extra_headers={"x-routeiq-cost-weight": "1e9"})
    assert cheap.choices[0].message.content


def test_batch_routing_and_the_gateway_choose_the_same_models(
    client: OpenAI, versions: dict[str, int], prompts: list[str], mlflow_workspace: Path
) -> None:
    """No train/serve skew: `routeiq route` on the same version and λ picks what the gateway picks."""
    chosen = prompts[:12]
    source = mlflow_workspace / "skew-prompts.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "prompt": p}) + "\n" for i, p in enumerate(chosen)))
    for weight in (0.0, 50.0):
        served = [ask(client, p, extra_headers={"x-routeiq-cost-weight": str(weight)})[1] for p in chosen]
        assert {h["x-routeiq-router-version"] for h in served} == {str(versions["knn"])}
        out = mlflow_workspace / f"skew-{weight}.jsonl"
        exe = shutil.which("routeiq", path=str(Path(sys.executable).parent)) or "routeiq"
        done = subprocess.run(
            [
                exe,
                "route",
                "--model-uri",
                f"models:/routeiq-router/{versions['knn']}",
                "--input",
                str(source),
                "--output",
                str(out),
                "--cost-weight",
                str(weight),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        batch = [json.loads(line)["model"] for line in out.read_text().splitlines()]
        assert batch == [h["x-routeiq-model"] for h in served]


def test_spans_land_in_files_with_the_decision_and_the_recorded_cost(
    gateway: str, client: OpenAI, prompts: list[str], recorded: dict[tuple[str, str], Any], mlflow_workspace: Path
) -> None:
    completion, headers = ask(client, prompts[1], extra_body={"routeiq": {"cost_weight": 1e9}})
    span = wait_for(lambda: spans_by_response(mlflow_workspace / "traces").get(completion.id), what="the span")
    attrs = span.attributes
    model = headers["x-routeiq-model"]
    row = recorded[(prompt_id(prompts[1]), model)]
    assert span.name == a.CHAT_SPAN_NAME
    assert attrs[a.OPERATION_NAME] == "chat" and attrs[a.REQUEST_MODEL] == "auto"
    assert attrs[a.CHOSEN_MODEL] == model and attrs[a.DECISION] == "router"
    assert attrs[a.COST_WEIGHT] == 5000.0  # clamped to max_cost_weight
    assert attrs[a.PROPENSITY] == 1.0
    assert attrs[a.COST_USD] == pytest.approx(row[schema.COST_USD]) and attrs[a.COST_SOURCE] == "provider"
    assert attrs[a.PROMPT_HASH] == prompt_id(prompts[1]) and attrs[a.PROMPT_TEXT] == prompts[1]
    assert len(attrs[a.CANDIDATES]) == len(attrs[a.PREDICTED_QUALITY]) == len(attrs[a.PREDICTED_COST]) == 11
    assert model == attrs[a.CANDIDATES][min(range(11), key=lambda i: attrs[a.PREDICTED_COST][i])]
    assert attrs[a.INPUT_TOKENS] > 0 and attrs[a.OUTPUT_TOKENS] > 0
    assert attrs[a.FINISH_REASONS] == ["stop"]
    assert attrs[a.ROUTER_FAMILY] == "knn"


def test_streaming_and_async_clients_are_routed_and_accounted(
    gateway: str, prompts: list[str], recorded: dict[tuple[str, str], Any], mlflow_workspace: Path
) -> None:
    async def run() -> tuple[str, str, str]:
        async with AsyncOpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0) as aclient:
            raw = await aclient.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": prompts[2]}], stream=True
            )
            pieces, ids = [], set()
            async for chunk in raw.parse():
                ids.add(chunk.id)
                assert chunk.usage is None  # the client did not ask for usage
                pieces.extend(c.delta.content or "" for c in chunk.choices)
            assert len(ids) == 1
            return "".join(pieces), raw.headers["x-routeiq-model"], ids.pop()

    text, model, response_id = asyncio.run(run())
    row = recorded[(prompt_id(prompts[2]), model)]
    assert text == row[schema.RESPONSE]
    span = wait_for(lambda: spans_by_response(mlflow_workspace / "traces").get(response_id), what="stream span")
    assert span.attributes[a.STREAM] is True
    assert span.attributes[a.COST_USD] == pytest.approx(row[schema.COST_USD])


def test_an_explicit_model_bypasses_the_router(client: OpenAI, prompts: list[str], models: list[str]) -> None:
    completion, headers = ask(client, prompts[3], model=models[0])
    assert headers["x-routeiq-model"] == models[0] and headers["x-routeiq-decision"] == "explicit"
    assert completion.model


def test_feedback_lands_linked_to_its_request(
    gateway: str, client: OpenAI, prompts: list[str], mlflow_workspace: Path
) -> None:
    completion, _ = ask(client, prompts[4])
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    known = httpx.post(
        f"{gateway}/v1/feedback", json={"id": completion.id, "score": 0.75, "source": "test"}, headers=auth
    )
    assert known.status_code == 200 and known.json()["known"] is True
    unknown = httpx.post(f"{gateway}/v1/feedback", json={"id": "chatcmpl-never", "score": 1}, headers=auth)
    assert unknown.status_code == 200 and unknown.json()["known"] is False
    bad = httpx.post(f"{gateway}/v1/feedback", json={"id": completion.id, "score": 1.5}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "score"

    def feedback_spans() -> list[Any]:
        return [s for s in read_spans(mlflow_workspace / "traces") if s.name == a.FEEDBACK_SPAN_NAME]

    found = wait_for(lambda: len(feedback_spans()) >= 2 and feedback_spans(), what="feedback spans")
    request_span = spans_by_response(mlflow_workspace / "traces")[completion.id]
    linked = next(s for s in found if s.attributes[a.FEEDBACK_RESPONSE_ID] == completion.id)
    assert linked.attributes[a.FEEDBACK_SCORE] == 0.75 and linked.attributes[a.FEEDBACK_KNOWN] is True
    assert (request_span.trace_id, request_span.span_id) in linked.links
    flagged = next(s for s in found if s.attributes[a.FEEDBACK_RESPONSE_ID] == "chatcmpl-never")
    assert flagged.attributes[a.FEEDBACK_KNOWN] is False


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "api_base": "http://169.254.169.254"},
            400,
            "forbidden_parameter",
        ),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "api_key": "sk-mine"},
            400,
            "forbidden_parameter",
        ),
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, 404, "model_not_found"),
        ({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": 0}, 400, "invalid_request_error"),
        ({"model": "auto", "messages": []}, 400, "invalid_request_error"),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "routeiq": {"cost_weight": -1}},
            400,
            "invalid_request_error",
        ),
    ],
)
def test_bad_requests_get_openai_shaped_errors(gateway: str, body: dict[str, Any], status: int, code: str) -> None:
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


def test_unknown_paths_and_methods_get_openai_shaped_errors(gateway: str) -> None:
    missing = httpx.get(f"{gateway}/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_route"
    wrong = httpx.delete(f"{gateway}/v1/models")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert "/v1/chat/completions" in wrong.json()["error"]["message"]


def test_a_wrong_key_is_refused_and_health_stays_open(gateway: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{gateway}/v1", api_key="sk-wrong", max_retries=0).models.list()
    assert httpx.get(f"{gateway}/_health/live").status_code == 200
    assert httpx.get(f"{gateway}/_health/ready").status_code == 200
    assert httpx.get(f"{gateway}/admin/router").status_code == 401


def test_models_lists_the_virtual_model_and_every_deployment(client: OpenAI, models: list[str]) -> None:
    assert [m.id for m in client.models.list().data] == ["auto", *models]


def test_metrics_count_requests_decisions_and_spans(gateway: str) -> None:
    text = httpx.get(f"{gateway}/metrics").text
    assert 'routeiq_routing_decisions_total{arm="",by="router"' in text
    assert 'routeiq_router_fallbacks_total{reason="no_router"} 1.0' in text
    assert 'routeiq_spans_total{destination="file",outcome="dropped"} 0.0' in text
    assert 'routeiq_router_polls_total{outcome="loaded",slot="champion"}' in text


def test_promotion_while_requests_flow_changes_decisions_with_no_failures(
    gateway: str, versions: dict[str, int], prompts: list[str]
) -> None:
    client = MlflowClient()
    promote(client, get_version(client, versions["strongest"]), force=True)
    wait_for(lambda: serving_version(gateway, versions["strongest"]), what="strongest to load")
    seen: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        with OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
            i = 0
            while not stop.is_set():
                try:
                    _, headers = ask(sdk, prompts[i % len(prompts)])
                    seen.append((headers["x-routeiq-router-version"], headers["x-routeiq-model"]))
                except BaseException as exc:  # every failure counts, whatever its type
                    failures.append(exc)
                i += 1

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        wait_for(lambda: len(seen) >= 5, what="traffic before the promotion")
        promote(client, get_version(client, versions["cheapest"]), force=True)
        wait_for(lambda: any(v == str(versions["cheapest"]) for v, _ in seen[-3:]), what="the new version to serve")
        count = len(seen)
        wait_for(lambda: len(seen) >= count + 5, what="traffic after the promotion")
    finally:
        stop.set()
        worker.join(30)
    assert failures == []
    before = {m for v, m in seen if v == str(versions["strongest"])}
    after = {m for v, m in seen if v == str(versions["cheapest"])}
    assert len(before) == 1 and len(after) == 1 and before != after
    versions_in_order = [v for v, _ in seen]
    switch = versions_in_order.index(str(versions["cheapest"]))
    assert set(versions_in_order[switch:]) == {str(versions["cheapest"])}  # no flapping back


def test_tools_and_response_format_pass_through(client: OpenAI, prompts: list[str]) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    completion, headers = ask(client, prompts[5], tools=[tool], response_format={"type": "text"})
    assert completion.choices[0].message.content and headers["x-routeiq-decision"] == "router"


def test_embeddings_pass_through_to_the_named_deployment(client: OpenAI, gateway: str, models: list[str]) -> None:
    result = client.embeddings.create(model=models[0], input=["routing", "gateways"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    virtual = httpx.post(f"{gateway}/v1/embeddings", json={"model": "auto", "input": "x"}, headers=auth)
    assert virtual.status_code == 400 and "chat completions only" in virtual.json()["error"]["message"]


def test_the_litellm_path_serves_the_same_recorded_answers_and_costs(
    upstream: str, models: list[str], prompts: list[str], recorded: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "sk-up"}}
            for m in models[:2]
        ],
        "routeiq_settings": {
            "fast_path": False,
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "telemetry": {"directory": str(tmp_path / "traces"), "export_interval_seconds": 0.1},
        },
    }
    path = tmp_path / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    with running(load_config(path)) as url, OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as sdk:
        completion, headers = ask(sdk, prompts[0], model=models[1])
        row = recorded[(prompt_id(prompts[0]), models[1])]
        assert completion.choices[0].message.content == row[schema.RESPONSE]
        stream = sdk.chat.completions.create(
            model=models[1], messages=[{"role": "user", "content": prompts[0]}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == row[schema.RESPONSE]
        span = wait_for(lambda: spans_by_response(tmp_path / "traces").get(completion.id), what="litellm span")
        assert span.attributes[a.COST_USD] == pytest.approx(row[schema.COST_USD])
        _, headers = ask(sdk, prompts[0])  # no learned strategy: the virtual model uses the fallback
        assert headers["x-routeiq-decision"] == "fallback" and headers["x-routeiq-model"] in models[:2]


def test_a_version_that_fails_verification_keeps_the_old_router(
    gateway: str, versions: dict[str, int], mlflow_workspace: Path, client: OpenAI, prompts: list[str]
) -> None:
    serving_now = admin(gateway)["champion"]["version"]
    mlflow = MlflowClient()
    knn = mlflow.get_model_version("routeiq-router", str(versions["knn"]))
    model_id = str(knn.source).rsplit("/", 1)[-1]  # MLflow 3 stores logged models under models/<model id>
    stored = [p for p in mlflow_workspace.rglob("router_artifact/router.json") if model_id in str(p)]
    assert stored, "the knn artifact is not in the local store"
    for path in stored:
        path.write_text(path.read_text().replace('"knn"', '"knn" '))  # one byte: the manifest hash breaks
    promote(mlflow, get_version(mlflow, versions["knn"]), force=True)

    def failed() -> Any:
        poll = admin(gateway)["champion"]["last_poll"]
        return poll if poll["status"] == "failed" else None

    poll = wait_for(failed, what="the failed load")
    assert "altered" in poll["message"] and f"still serving version {serving_now}" in poll["message"]
    assert admin(gateway)["champion"]["version"] == serving_now
    _, headers = ask(client, prompts[0])
    assert headers["x-routeiq-router-version"] == str(serving_now)
    assert 'routeiq_router_polls_total{outcome="failed",slot="champion"}' in httpx.get(f"{gateway}/metrics").text
