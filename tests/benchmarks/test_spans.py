"""The pipeline-scale benchmark's span generator writes what the gateway writes, and `measure` runs every stage.

Real spans come from the gateway's own code path: its attribute builders, its TracerProvider and its file
exporter, fed with what the replay provider would report for the same recorded answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import mlflow
import orjson
import pyarrow as pa
import pytest
from opentelemetry.trace import Link, SpanKind

from benchmarks import pipeline_scale
from benchmarks.spans import CALLER, LOGGING_ROUTER, UPSTREAM_PROVIDER, Replay, logging_decision
from features import schema
from pipelines.ingest import ingest
from pipelines.label import LabelParams, label
from pipelines.outcomes import first_prompts, import_source, write_outcomes
from serving.providers.pricing import PROVIDER
from serving.replay.outcomes import load_index
from serving.request_span import decision_attributes, request_attributes, usage_attributes
from serving.routes.chat_completions import OPERATION
from serving.routes.feedback import feedback_attributes
from serving.routing.policy import Decision
from serving.schemas import FeedbackRequest
from serving.telemetry import attributes as a
from serving.telemetry.files import SpanRecord, read_spans
from serving.telemetry.settings import TelemetrySettings
from serving.telemetry.tracing import Telemetry

COST_WEIGHT = 100.0
SPANS = 400


@pytest.fixture(scope="module")
def outcomes(data_dir: Path) -> pa.Table:
    """Every model's recorded answer on a few dozen RouterBench prompts."""
    table, _ = import_source("routerbench", data_dir / "routerbench")
    return first_prompts(table, {schema.TRAIN: 30, schema.VALID: 10, schema.TEST: 10})


@pytest.fixture(scope="module")
def generated(outcomes: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    traces = tmp_path_factory.mktemp("generated") / "traces"
    files = Replay.of(outcomes, COST_WEIGHT).write(
        traces, SPANS, TelemetrySettings(max_export_batch_size=50, max_file_bytes=200_000)
    )
    assert (files.spans, files.requests + files.feedback) == (SPANS, SPANS)
    assert files.files == len(list(traces.glob("spans-*.jsonl"))) > 1
    return traces


def _gateway_spans(outcomes: pa.Table, like: SpanRecord, directory: Path, tmp_path: Path) -> None:
    """The request `like` describes and its feedback, logged through the gateway's telemetry as the chat and
    feedback routes log them, with what the replay provider reports for that recorded answer."""
    model, prompt = like.attributes[a.CHOSEN_MODEL], like.attributes[a.PROMPT_TEXT]
    write_outcomes(outcomes, tmp_path / "outcomes.parquet")
    record = load_index(tmp_path / "outcomes.parquet").lookup(model, like.attributes[a.PROMPT_HASH])
    (quality,) = [
        r[schema.QUALITY] for r in outcomes.to_pylist() if (r[schema.PROMPT], r[schema.MODEL]) == (prompt, model)
    ]
    router = SimpleNamespace(label=LOGGING_ROUTER[0], family=LOGGING_ROUTER[1])
    uniform = logging_decision(outcomes, COST_WEIGHT)
    decision = Decision(**{**uniform.__dict__, "model": model, "router": router})
    usage = SimpleNamespace(
        response_id=like.attributes[a.RESPONSE_ID],
        response_model=model,
        input_tokens=record.prompt_tokens,
        output_tokens=record.completion_tokens,
        finish_reasons=("stop",),
    )
    telemetry = Telemetry(TelemetrySettings(directory=directory, capture_prompts=True, export_interval_seconds=0.05))
    telemetry.start()
    tracer = telemetry.tracer
    span = tracer.start_span(
        a.CHAT_SPAN_NAME, kind=SpanKind.SERVER, attributes=request_attributes(OPERATION, "auto", False)
    )
    span.set_attribute(a.KEY_ID, CALLER.actor)
    span.set_attributes(decision_attributes(decision, prompt, capture_prompt=True))
    span.set_attributes(usage_attributes(usage, UPSTREAM_PROVIDER, record.cost_usd, PROVIDER))
    span.set_attribute(a.HTTP_STATUS, 200)
    span.set_attribute(a.LATENCY_MS, like.attributes[a.LATENCY_MS])
    span.end()
    feedback = FeedbackRequest(id=usage.response_id, score=quality, source="replay")
    tracer.start_span(
        a.FEEDBACK_SPAN_NAME,
        links=[Link(span.get_span_context())],
        attributes=feedback_attributes(feedback, True, CALLER),
    ).end()
    telemetry.shutdown()


def _shape(value: Any) -> Any:
    """The JSON structure of `value` without its strings and numbers (lists by their first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _first_line(directory: Path) -> dict[str, Any]:
    first = sorted(directory.glob("spans-*.jsonl"))[0]
    return dict(orjson.loads(first.read_bytes().splitlines()[0]))


def _raw_spans(line: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spans = [s for rs in line["resourceSpans"] for scope in rs["scopeSpans"] for s in scope["spans"]]
    return {s["name"]: s for s in spans}


def _nulls(warehouse: Path, query: str) -> set[tuple[str, ...]]:
    """The columns that are null, per row of `query`."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.sql(query).to_arrow_table().to_pylist()
    return {tuple(sorted(k for k, v in row.items() if v is None)) for row in rows}


def _scored_request(traces: Path) -> dict[str, SpanRecord]:
    """The first generated feedback span and the request span it links to, by span name."""
    records = list(read_spans(traces))
    feedback = next(r for r in records if r.name == a.FEEDBACK_SPAN_NAME)
    (request,) = [r for r in records if (r.trace_id, r.span_id) in feedback.links]
    return {a.CHAT_SPAN_NAME: request, a.FEEDBACK_SPAN_NAME: feedback}


def test_generated_spans_are_what_the_gateway_writes(outcomes: pa.Table, generated: Path, tmp_path: Path) -> None:
    assert len(list(read_spans(generated))) == SPANS
    ours = _scored_request(generated)
    request = ours[a.CHAT_SPAN_NAME]
    real_dir = tmp_path / "real"
    _gateway_spans(outcomes, request, real_dir, tmp_path)
    real = {r.name: r for r in read_spans(real_dir)}
    assert set(real) == {a.CHAT_SPAN_NAME, a.FEEDBACK_SPAN_NAME}
    # The same recorded answer gives the same attributes, value for value, and the feedback links to its request.
    assert ours[a.CHAT_SPAN_NAME].attributes == real[a.CHAT_SPAN_NAME].attributes
    assert ours[a.FEEDBACK_SPAN_NAME].attributes == real[a.FEEDBACK_SPAN_NAME].attributes
    assert ours[a.FEEDBACK_SPAN_NAME].links == ((request.trace_id, request.span_id),)
    assert set(request.resource) == set(real[a.CHAT_SPAN_NAME].resource)
    assert request.resource["service.name"] == real[a.CHAT_SPAN_NAME].resource["service.name"]
    # The encoded lines have the same structure: envelope, scope, span fields, kinds, flags, value kinds.
    generated_line, real_line = _first_line(generated), _first_line(real_dir)
    real_spans, our_spans = _raw_spans(real_line), _raw_spans(generated_line)
    for name, real_span in real_spans.items():
        assert _shape(our_spans[name]) == _shape(real_span)
        assert (our_spans[name]["kind"], our_spans[name]["flags"]) == (real_span["kind"], real_span["flags"])
        value_kinds = {kv["key"]: _shape(kv["value"]) for kv in real_span["attributes"]}
        assert {kv["key"]: _shape(kv["value"]) for kv in our_spans[name]["attributes"]} == value_kinds
    del (
        real_line["resourceSpans"][0]["scopeSpans"][0]["spans"],
        generated_line["resourceSpans"][0]["scopeSpans"][0]["spans"],
    )
    assert _shape(generated_line) == _shape(real_line)


def test_generated_spans_ingest_and_label_like_the_gateway_s(
    outcomes: pa.Table, generated: Path, tmp_path: Path
) -> None:
    real_dir = tmp_path / "real"
    _gateway_spans(outcomes, _scored_request(generated)[a.CHAT_SPAN_NAME], real_dir, tmp_path)
    ours, real = tmp_path / "ours.duckdb", tmp_path / "real.duckdb"
    stats, real_stats = ingest(generated, ours), ingest(real_dir, real)
    requests = sum(1 for r in read_spans(generated) if r.name == a.CHAT_SPAN_NAME)
    assert (stats.requests, stats.feedback, stats.malformed, stats.duplicates) == (requests, SPANS - requests, 0, 0)
    assert (real_stats.requests, real_stats.feedback) == (1, 1)
    for table in ("requests", "feedback"):
        assert _nulls(ours, f"SELECT * FROM {table}") == _nulls(real, f"SELECT * FROM {table}")
    table, labelled = label(ours, LabelParams())
    real_table, _ = label(real, LabelParams())
    assert table.schema == real_table.schema
    assert {tuple(sorted(k for k, v in r.items() if v is None)) for r in table.to_pylist()} == {
        tuple(sorted(k for k, v in r.items() if v is None)) for r in real_table.to_pylist()
    }
    recorded = {(r[schema.PROMPT_ID], r[schema.MODEL]): r for r in outcomes.to_pylist()}
    assert labelled.rows == stats.feedback and labelled.dropped["no_feedback"] == requests - stats.feedback
    for row in table.to_pylist():
        truth = recorded[row[schema.PROMPT_ID], row[schema.MODEL]]
        assert (row[schema.PROMPT], row[schema.QUALITY]) == (truth[schema.PROMPT], truth[schema.QUALITY])
        assert row[schema.COST_USD] == pytest.approx(truth[schema.COST_USD])
        assert row[schema.PROPENSITY] == pytest.approx(1 / 11)
        assert row[schema.COST_SOURCE] == schema.COST_RECORDED


def test_measure_runs_every_stage_and_renders_the_section(outcomes: pa.Table, tmp_path: Path) -> None:
    saved = (os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_REGISTRY_URI"), mlflow.get_tracking_uri())
    lines: list[str] = []
    result = pipeline_scale.measure(
        (300, 600), table=outcomes, warm_up=0, budget_seconds=600, workdir=tmp_path, progress=lines.append
    )
    assert [run.spans for run in result.runs] == [300, 600]
    for number, run in enumerate(result.runs, start=1):
        assert run.skipped is None and run.requests + run.feedback == run.spans
        assert run.ingested == (run.requests, run.feedback)
        assert run.outcome_rows == run.feedback and run.version == number
        assert [s.name for s in run.stages] == ["generate", "ingest", "label", "featurize", "tune", "register"]
        assert run.seconds(pipeline_scale.TO_ROUTER) == pytest.approx(sum(s.seconds for s in run.stages[1:]))
    assert list(tmp_path.iterdir()) == []
    assert (
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
        mlflow.get_tracking_uri(),
    ) == saved
    assert any("600 spans: ingest" in line for line in lines)
    section = pipeline_scale.render(result)
    assert section.startswith("## Pipeline scale\n")
    first = result.runs[0]
    assert f"| 300 | {first.requests:,} / {first.feedback:,} |" in section and "| 300 → 600 |" in section
    assert "Ingest ≥ 200,000 spans/s" in section


def test_sizes_over_the_budget_are_reported_not_dropped(outcomes: pa.Table, tmp_path: Path) -> None:
    result = pipeline_scale.measure(
        (200, 10**9), table=outcomes, warm_up=0, budget_seconds=60, workdir=tmp_path, progress=lambda _: None
    )
    skipped = result.runs[1]
    assert skipped.stages == () and skipped.skipped is not None and "not run" in skipped.skipped
    assert f"| 1,000,000,000 | {skipped.skipped} |" in pipeline_scale.render(result)
