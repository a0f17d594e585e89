"""The cascade serving mode on a real gateway and replay upstream: a cascade version's prompt-only choice answers
first, its verifier scores the answer, and the strong model is asked exactly when the score is below the bar λ sets.
Both calls are child spans, the response says which answered and what the check scored, and after feedback on
both answer ids the label stage keeps both outcomes of an escalated request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features import schema
from features.prompt import prompt_from_messages, prompt_id
from features.registry import build
from pipelines import traffic
from pipelines.ingest import ingest
from pipelines.label import NO_FEEDBACK, LabelParams, label
from routers.artifact import save
from routers.cascade import CascadeParams, CascadeRouter
from routers.dataset import training_set
from routers.routing_model import RoutingModel
from serving.config import parse_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.routing import cascade
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans

STRONG, CHEAP = "alpha", "beta"
COST = {STRONG: 0.01, CHEAP: 0.0001}
COST_WEIGHT = 70.0
"""λ·cost(strong) = 0.7: above the strong model's predicted edge on an unseen prompt (about 0.5), so the cheap model
answers first; a doubted cheap answer is still worth escalating, a trusted one is not."""
PROMPTS = 40
"""Prompts the router is trained on, and as many others (unseen, so its prompt-only guess is all it has) sent."""


def _rows() -> list[dict[str, object]]:
    """The cheap model answers even questions right and odd ones with a hedge; the strong one is always right."""
    rows = []
    for i in range(2 * PROMPTS):
        prompt = f"Question {i}: what is {i} plus {i}? Reply with the number."
        right = f"The answer is {2 * i}."
        answers = {STRONG: (right, 1.0), CHEAP: (right, 1.0) if i % 2 == 0 else ("I am not sure, maybe banana.", 0.0)}
        for model, (text, quality) in answers.items():
            rows.append(
                {
                    schema.PROMPT_ID: prompt_id(prompt),
                    schema.PROMPT: prompt,
                    schema.TASK: "sums",
                    schema.MODEL: model,
                    schema.QUALITY: quality,
                    schema.COST_USD: COST[model],
                    schema.COST_SOURCE: schema.COST_RECORDED,
                    schema.INPUT_TOKENS: 12,
                    schema.OUTPUT_TOKENS: 6,
                    schema.RESPONSE: text,
                    schema.SOURCE: "unit",
                    schema.SPLIT: schema.TRAIN if i < PROMPTS else schema.TEST,
                }
            )
    return rows


@dataclass(frozen=True)
class Served:
    prompt: str
    outcome: str | None
    """None: not cascaded (the version's prompt-only choice was the strong model)."""
    model: str
    score: float | None
    threshold: float | None
    first_id: str | None
    response_id: str


@dataclass(frozen=True)
class Run:
    router: CascadeRouter
    model: RoutingModel
    table: pa.Table
    served: list[Served]
    traces: Path
    streamed: httpx.Headers


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("cascade")
    table = schema.conform(pa.Table.from_pylist(_rows(), schema=schema.OUTCOME_SCHEMA))
    pq.write_table(table, folder / "outcomes.parquet")
    train = training_set(table.filter(pc.equal(table[schema.SPLIT], schema.TRAIN)))
    featurizer = build("text").fit(list(train.prompts))
    router = CascadeRouter(CascadeParams(cheap_model=CHEAP, strong_model=STRONG), seed=0)
    router.fit(train.with_features(featurizer.transform(list(train.prompts))))
    save(folder / "router", router, featurizer)
    with replay_running(ReplaySettings(outcomes=folder / "outcomes.parquet")) as upstream:
        config = {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream}} for m in COST
            ],
            "routeiq_settings": {
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(folder / "traces"), "capture_prompts": True},
                "access": {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "audit.sqlite")}},
                "routing": {"reference": str(folder / "router"), "cascade": "verifier", "budget_ms": 60_000.0},
            },
        }
        with running(parse_config(config)) as url:
            sent = table.filter(pc.equal(table[schema.SPLIT], schema.TEST))
            served = _send_all(url, sent)
            streamed = _stream_one(url, str(sent[schema.PROMPT][0]))
    yield Run(router, RoutingModel(featurizer, router), table, served, folder / "traces", streamed)


def _send_all(url: str, table: pa.Table) -> list[Served]:
    """Every prompt once at λ = COST_WEIGHT; feedback on every answer id the response names, as a client would."""
    recorded = {(r[schema.PROMPT], r[schema.MODEL]): r[schema.QUALITY] for r in table.to_pylist()}
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    headers = {"x-routeiq-cost-weight": str(COST_WEIGHT)}
    found = []
    with httpx.Client(base_url=url) as http:
        for prompt in sorted({str(p) for p in table[schema.PROMPT].to_pylist()}):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": prompt}], extra_headers=headers
            )
            completion = raw.parse()
            model = raw.headers["x-routeiq-model"]
            first_id = raw.headers.get(traffic.FIRST_ID_HEADER)
            score, threshold = raw.headers.get(cascade.SCORE_HEADER), raw.headers.get(cascade.THRESHOLD_HEADER)
            found.append(
                Served(
                    prompt=prompt,
                    outcome=raw.headers.get("x-routeiq-cascade"),
                    model=model,
                    score=None if score is None else float(score),
                    threshold=None if threshold is None else float(threshold),
                    first_id=first_id,
                    response_id=completion.id,
                )
            )
            first_model = raw.headers.get(traffic.FIRST_MODEL_HEADER, "")
            answers = [(completion.id, model)] + ([(first_id, first_model)] if first_id else [])
            for response_id, answered in answers:
                score = recorded[(prompt, answered)]
                assert http.post("/v1/feedback", json={"id": response_id, "score": score}).status_code == 200
    return found


def _stream_one(url: str, prompt: str) -> httpx.Headers:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    headers = {"x-routeiq-cost-weight": str(COST_WEIGHT)}
    with (
        httpx.Client(base_url=url) as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        response.read()
        assert response.status_code == 200
        return response.headers


def test_the_gateway_escalates_exactly_when_the_verifier_says_so(run: Run) -> None:
    answers = {(str(r[schema.PROMPT]), r[schema.MODEL]): str(r[schema.RESPONSE]) for r in run.table.to_pylist()}
    outcomes = []
    for served in run.served:
        prompt = prompt_from_messages([{"role": "user", "content": served.prompt}])
        chosen = run.model.decide([prompt], cost_weight=COST_WEIGHT)[0].model
        if chosen == STRONG:  # the prompt-only choice is already the strong model: nothing to check
            assert (served.outcome, served.model, served.first_id) == (None, STRONG, None)
            continue
        answer = answers[(served.prompt, chosen)]
        score = float(run.router.verify([prompt], [answer], chosen)[0])
        escalate = score < float(run.router.thresholds([prompt], COST_WEIGHT)[0])
        assert served.outcome == (cascade.ESCALATED if escalate else cascade.KEPT), served
        assert served.model == (STRONG if escalate else chosen)
        assert served.score == pytest.approx(score, abs=1e-4)
        assert (served.first_id is not None) == escalate
        outcomes.append(served.outcome)
    # The data makes both branches happen: hedged cheap answers are doubted, right ones trusted.
    assert outcomes.count(cascade.ESCALATED) >= PROMPTS // 4
    assert outcomes.count(cascade.KEPT) >= PROMPTS // 4


def test_the_two_step_decision_is_the_routers_own(run: Run) -> None:
    """With two candidates the first model is the cheap one, and the gateway's verdicts are `escalate`'s."""
    answers = {str(r[schema.PROMPT]): str(r[schema.RESPONSE]) for r in run.table.to_pylist() if r["model"] == CHEAP}
    for served in run.served:
        if served.outcome is None:
            continue
        prompt = prompt_from_messages([{"role": "user", "content": served.prompt}])
        expected = run.router.escalate(prompt, answers[served.prompt], COST_WEIGHT)
        assert (served.outcome == cascade.ESCALATED) == (expected is not None)


def test_both_calls_are_child_spans_and_the_request_span_records_the_whole_cost(run: Run) -> None:
    spans = list(read_spans(run.traces))
    requests = {s.attributes.get(a.RESPONSE_ID): s for s in spans if s.name == a.CHAT_SPAN_NAME}
    steps = [s for s in spans if s.name == a.CASCADE_STEP_SPAN_NAME]
    for served in run.served:
        request = requests[served.response_id]
        children = [s for s in steps if s.parent_span_id == request.span_id]
        if served.outcome is None:
            assert not children and a.CASCADE_OUTCOME not in request.attributes
            continue
        assert [c.attributes[a.CASCADE_STEP] for c in children] == (
            [cascade.FIRST, cascade.ESCALATED] if served.first_id else [cascade.FIRST]
        )
        assert request.attributes[a.CASCADE_OUTCOME] == served.outcome
        assert request.attributes[a.DECISION] == a.DECISION_CASCADE
        assert request.attributes[a.CHOSEN_MODEL] == served.model
        call_costs = sum(c.attributes[a.COST_USD] for c in children)
        assert request.attributes[a.CASCADE_COST_USD] == pytest.approx(call_costs)
        if served.first_id:
            first = children[0].attributes
            assert request.attributes[a.CASCADE_FIRST_RESPONSE_ID] == first[a.RESPONSE_ID] == served.first_id
            assert request.attributes[a.CASCADE_FIRST_COST_USD] == pytest.approx(first[a.COST_USD])


def test_a_stream_is_routed_on_the_prompt_alone_and_says_so(run: Run) -> None:
    assert run.streamed["x-routeiq-cascade"] == cascade.SKIPPED_STREAM
    assert run.streamed["x-routeiq-decision"] != a.DECISION_CASCADE


def test_the_training_data_keeps_both_outcomes_of_an_escalated_request(run: Run, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    ingest(run.traces, warehouse)
    rows, stats = label(warehouse, LabelParams())
    labelled: dict[str, dict[str, float]] = {}
    for row in rows.to_pylist():
        labelled.setdefault(row[schema.PROMPT], {})[row[schema.MODEL]] = row[schema.QUALITY]
    recorded = {(r[schema.PROMPT], r[schema.MODEL]): r[schema.QUALITY] for r in run.table.to_pylist()}
    for served in run.served:
        models = {STRONG, CHEAP} if served.first_id else {served.model}
        assert set(labelled[served.prompt]) == models, served
        assert labelled[served.prompt] == {m: recorded[(served.prompt, m)] for m in models}
    assert stats.feedback_unmatched == 0
    assert stats.dropped[NO_FEEDBACK] == 1  # the stream: no feedback was posted for it


def test_the_traffic_driver_reads_the_gateways_header_names() -> None:
    assert (traffic.FIRST_ID_HEADER, traffic.FIRST_MODEL_HEADER) == (
        cascade.FIRST_ID_HEADER,
        cascade.FIRST_MODEL_HEADER,
    )
