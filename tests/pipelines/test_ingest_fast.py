"""The native ingest path against the per-line reader, on span files the gateway's real telemetry writes (its
`Telemetry`, OTLP-JSON file exporter and span attribute functions, over RouterBench prompts): both must leave the
same warehouse, whatever the files hold, and the native path must read well-formed lines itself."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest
from opentelemetry.trace import Link, SpanKind, StatusCode, use_span

from features import schema
from pipelines import ingest as ingest_stage
from pipelines import span_arrow
from pipelines.ingest import ingest
from pipelines.outcomes import ImportStats, first_prompts
from pipelines.span_columns import request_table
from serving.request_span import decision_attributes, request_attributes, usage_attributes
from serving.routing.policy import Decision
from serving.telemetry import attributes as a
from serving.telemetry.settings import TelemetrySettings
from serving.telemetry.tracing import Telemetry

PROMPTS = 60
FEEDBACK = a.FEEDBACK_SPAN_NAME
ODD_PROMPTS = (
    'JSON inside: {"answer": null, "list": [null, 1]} and a key "status":null, then \\" and \\\\',
    "Unicode: naïve café, 東京, emoji 🚀, tab\tand newline\nand NUL \x00 end",
)
"""Prompts whose text looks like the JSON structure around it; the native path must still read them."""
Edit = Callable[[bytes], bytes]
TABLES = {
    "requests": "SELECT * FROM requests ORDER BY span_id",
    "feedback": "SELECT * FROM feedback ORDER BY span_id",
    "malformed_lines": "SELECT file, line, reason FROM malformed_lines ORDER BY ALL",
    "ingested_files": "SELECT path, bytes_read, lines_read FROM ingested_files ORDER BY path",
}


@dataclass(frozen=True)
class Usage:
    """What a provider call reports (`serving.request_span.Usage`)."""

    response_id: str
    response_model: str
    input_tokens: int
    output_tokens: int
    finish_reasons: tuple[str, ...] = ("stop",)


def _record_traffic(
    directory: Path, prompts: list[str], models: list[str], batch: int, odd: Callable[[Any, int], None] | None = None
) -> None:
    """Request spans (with a provider child span), feedback spans linked to them, and an embeddings span, as
    the gateway records them; `odd(span, i)` may set unusual attributes on request `i` before it ends."""
    settings = TelemetrySettings(
        directory=directory, capture_prompts=True, export_interval_seconds=60.0, max_export_batch_size=batch
    )
    telemetry = Telemetry(settings, resource_attributes={"deployment.environment": "test"})
    telemetry.start()
    tracer, rng = telemetry.tracer, random.Random(len(prompts))
    for i, prompt in enumerate(prompts):
        decision = Decision(
            model=models[i % len(models)],
            by=a.DECISION_EXPLORE,
            propensity=1 / len(models),
            cost_weight=0.5,
            arm="champion",
            candidates=tuple(models),
            quality=tuple(rng.random() for _ in models),
            cost=tuple(rng.random() / 1000 for _ in models),
        )
        attributes = request_attributes("chat", "auto", stream=i % 3 == 0)
        attributes |= decision_attributes(decision, prompt, capture_prompt=True)
        attributes |= {a.ROUTER_VERSION: "3", a.ROUTER_FAMILY: "knn"}
        span = tracer.start_span(a.CHAT_SPAN_NAME, kind=SpanKind.SERVER, attributes=attributes)
        with use_span(span, end_on_exit=False):
            tracer.start_span("provider.call").end()
        usage = Usage(f"chatcmpl-{i:04d}", decision.model, 10 + i, 2**40 + i)
        span.set_attributes(usage_attributes(usage, "openai", rng.random() / 100, "provider"))
        if i % 7 == 3:
            span.set_attribute(a.ERROR_TYPE, "upstream_error")
            span.set_status(StatusCode.ERROR, "the provider said no")
        span.set_attributes({a.HTTP_STATUS: 502 if i % 7 == 3 else 200, a.LATENCY_MS: rng.uniform(5, 500)})
        if odd is not None:
            odd(span, i)
        span.end()
        score = {a.FEEDBACK_RESPONSE_ID: usage.response_id, a.FEEDBACK_SCORE: rng.random()}
        score |= {a.FEEDBACK_SOURCE: "replay", a.FEEDBACK_KNOWN: True}
        tracer.start_span(a.FEEDBACK_SPAN_NAME, links=[Link(span.get_span_context())], attributes=score).end()
    unknown = {a.FEEDBACK_RESPONSE_ID: "chatcmpl-gone", a.FEEDBACK_SCORE: 1.0, a.FEEDBACK_KNOWN: False}
    tracer.start_span(a.FEEDBACK_SPAN_NAME, attributes=unknown).end()
    tracer.start_span(a.EMBEDDINGS_SPAN_NAME, attributes={a.INPUT_TOKENS: 7}).end()
    telemetry.shutdown()


def _odd_values(span: Any, i: int) -> None:
    """Values the exporter writes in forms the native path hands back, or reads in a less common way."""
    changes: dict[int, dict[str, Any]] = {
        0: {a.PREDICTED_COST: [float("nan")] * 11, a.LATENCY_MS: float("inf")},  # written as "NaN", "Infinity"
        1: {a.COST_USD: 0, a.PROPENSITY: 1},  # ints where doubles belong: intValue, read as 0.0 and 1.0
        2: {a.CANDIDATES: [], a.PREDICTED_QUALITY: []},  # an empty array is written as {"arrayValue":{}}
        3: {a.LATENCY_MS: -0.0, a.COST_WEIGHT: -0.0},
        4: {a.ROUTER_ARM: True},  # a bool in a string column: the wrong type
        5: {a.INPUT_TOKENS: 2**63 - 1, a.OUTPUT_TOKENS: -(2**63)},
        6: {a.HTTP_STATUS: 2**40},  # does not fit the INTEGER column
        7: {a.PREDICTED_QUALITY: [1, 2, 3]},  # ints in a double array
        8: {a.INPUT_TOKENS: 2**62, a.OUTPUT_TOKENS: 0},
    }
    span.set_attributes(changes.get(i, {}))


@pytest.fixture(scope="module")
def recorded(routerbench: tuple[pa.Table, ImportStats], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Span files of real traffic: RouterBench prompts, a few with text that looks like JSON, then odd values."""
    table = first_prompts(routerbench[0], {schema.TEST: PROMPTS})
    prompts = sorted(set(table[schema.PROMPT].to_pylist()))
    models = sorted(set(table[schema.MODEL].to_pylist()))
    root = tmp_path_factory.mktemp("fast-ingest")
    _record_traffic(root / "traces", [*ODD_PROMPTS, *prompts], models, batch=6)
    _record_traffic(root / "odd", prompts[:9], models, batch=1, odd=_odd_values)  # a line per span
    return root


def _lines(directory: Path) -> list[bytes]:
    return [line for path in sorted(directory.glob("*.jsonl")) for line in path.read_bytes().splitlines(True)]


def _warehouse(path: Path) -> dict[str, list[str]]:
    """Every row of every table as its repr: NaN equals NaN, -0.0 differs from 0.0."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {f"table {name}": [repr(row) for row in con.execute(query).fetchall()] for name, query in TABLES.items()}


def _prompts(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {row[0] for row in con.execute("SELECT prompt_text FROM requests").fetchall()}


def _both(traces: Path, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ingest `traces` natively and line by line into warehouses under `root`: (stats, tables) of each."""
    found = []
    for exact in (False, True):
        stats = ingest(traces, root / f"warehouse-{exact}.duckdb", exact=exact)
        found.append({**dataclasses.asdict(stats), "seconds": None} | _warehouse(root / f"warehouse-{exact}.duckdb"))
    return found[0], found[1]


def _assert_same(traces: Path, root: Path) -> dict[str, Any]:
    native, exact = _both(traces, root)
    for key in exact:
        assert native[key] == exact[key], key
    return exact


def _one_file(tmp_path: Path, lines: list[bytes]) -> Path:
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "spans-test.jsonl").write_bytes(b"".join(lines))
    return traces


def _edited(line: bytes, edit: Callable[[dict[str, Any]], object], name: str = a.CHAT_SPAN_NAME) -> bytes:
    """`line` with `edit` applied to its first span called `name`, encoded as the exporter encodes."""
    request = orjson.loads(line)
    spans = [span for rs in request["resourceSpans"] for scope in rs["scopeSpans"] for span in scope["spans"]]
    edit(next(span for span in spans if span["name"] == name))
    return orjson.dumps(request) + b"\n"


def _span_edit(change: Callable[[dict[str, Any]], object], name: str = a.CHAT_SPAN_NAME) -> Edit:
    return lambda line: _edited(line, change, name)


def _edit_lines(lines: list[bytes], edits: list[Edit]) -> list[bytes]:
    """Each edit applied to a line of its own (one with a request, a provider call and a linked feedback span),
    then the lines left as they were: no edited span has a copy elsewhere."""
    parts = (b'"name":"chat"', b'"links"', b'"parentSpanId"')
    full = [i for i, line in enumerate(lines) if all(part in line for part in parts)][: len(edits)]
    assert len(full) == len(edits), "record more traffic: too few lines to edit"
    edited = [edit(lines[i]) for i, edit in zip(full, edits, strict=True)]
    return [*edited, *(line for i, line in enumerate(lines) if i not in full)]


def _request_edit(change: Callable[[dict[str, Any]], object]) -> Edit:
    """An edit of the whole `ExportTraceServiceRequest` of a line."""

    def edit(line: bytes) -> bytes:
        request = orjson.loads(line)
        change(request)
        return orjson.dumps(request) + b"\n"

    return edit


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _set_value(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(span: dict[str, Any]) -> None:
        next(kv for kv in span["attributes"] if kv["key"] == key)["value"] = value

    return edit


def test_the_native_path_reads_every_line_the_exporter_wrote(recorded: Path) -> None:
    for path in sorted((recorded / "traces").glob("*.jsonl")):
        read = span_arrow.read_chunk(path.read_bytes(), path, 1)
        assert read.exact_lines == [], path
        assert read.requests.num_rows > 0 and read.requests.schema == request_table([]).schema
    odd = {span_arrow.read_chunk(p.read_bytes(), p, 1).exact_lines != [] for p in (recorded / "odd").iterdir()}
    assert True in odd  # the odd values are handed back to the per-line reader


def test_a_line_the_parser_rejects_is_handed_back_alone(recorded: Path) -> None:
    lines = _lines(recorded / "traces")
    bad = b'{"resourceSpans":[}'  # looks like one object on its line, so only the parser finds it out
    read = span_arrow.read_chunk(b"".join([*lines[:9], bad + b"\n", *lines[9:]]), recorded, 1)
    assert read.exact_lines == [(10, bad)] and read.spans == sum(line.count(b'"startTimeUnixNano"') for line in lines)


def test_both_paths_store_the_same_rows_from_real_traffic(recorded: Path, tmp_path: Path) -> None:
    found = _assert_same(recorded / "traces", tmp_path)
    assert found["requests"] > len(ODD_PROMPTS) and found["feedback"] == found["requests"] + 1  # + an unknown one
    assert (found["malformed"], found["duplicates"], found["other_spans"]) == (0, 0, found["requests"] + 1)
    assert set(ODD_PROMPTS) <= _prompts(tmp_path / "warehouse-False.duckdb")


def test_both_paths_agree_on_odd_values_and_wrong_types(recorded: Path, tmp_path: Path) -> None:
    found = _assert_same(recorded / "odd", tmp_path)
    assert found["malformed"] >= 2  # the bool in a string column, the status too large for INTEGER
    assert all("wrong type" in reason for reason in found["table malformed_lines"])


def test_both_paths_agree_on_broken_lines(recorded: Path, tmp_path: Path) -> None:
    lines = _lines(recorded / "traces")
    edits = [
        _span_edit(_set_value(a.PROPENSITY, {"stringValue": "high"})),  # the wrong type: set apart
        _span_edit(lambda span: span.update(spanId=span["spanId"][:-1] + "z")),  # one bad span, the rest is read
        _span_edit(lambda span: span.update(links=None)),
        _span_edit(lambda span: span.update(startTimeUnixNano="17x")),
        _span_edit(lambda span: span.update(status={"code": 7})),
        _span_edit(lambda span: span.update(name=None)),
        _span_edit(lambda span: span.pop("name")),
        _span_edit(lambda span: span.update(parentSpanId="xyz"), name="provider.call"),
        _span_edit(_set_value(a.OPERATION_NAME, {"stringValue": "chat", "boolValue": True})),
        _span_edit(_set_value(a.OPERATION_NAME, {"stringValue": "chat", "fooValue": 1})),
        _span_edit(_set_value(a.OPERATION_NAME, {"bytesValue": "not base64!"})),
        _span_edit(_set_value(a.FINISH_REASONS, {"arrayValue": {"values": [{"intValue": "1x"}]}})),
        lambda line: _edited(line, _set_value(a.LATENCY_MS, {"doubleValue": 1.25})).replace(b":1.25}", b":NaN}"),
        _span_edit(lambda span: span["attributes"].append({"value": {"stringValue": "no key"}})),
        _request_edit(lambda r: r["resourceSpans"][0]["resource"]["attributes"][0].update(value={"intValue": "1x"})),
        _request_edit(lambda r: r["resourceSpans"].append(None)),
        _request_edit(lambda r: r["resourceSpans"][0]["scopeSpans"].append(None)),
        _request_edit(lambda r: r["resourceSpans"][0]["scopeSpans"][0]["spans"].append(None)),
    ]
    raw = [b"{not json\n", b"\n", b"   \t\n", b"[1, 2]\n", lines[0].rstrip(b"\n") + b" " + lines[1]]
    broken = [*raw, *_edit_lines(lines, edits), lines[2][:100]]  # the last line is unfinished
    found = _assert_same(_one_file(tmp_path, broken), tmp_path)
    assert (found["lines"], found["incomplete"]) == (len(broken) - 1, 1)
    assert found["malformed"] == len(edits) + 3 and found["duplicates"] == 0


def test_both_paths_agree_on_unusual_but_valid_lines(recorded: Path, tmp_path: Path) -> None:
    edits = [
        _span_edit(lambda span: span.update(traceId=span["traceId"].upper())),
        _span_edit(lambda span: span["links"][0].update(spanId=span["links"][0]["spanId"].upper()), name=FEEDBACK),
        _span_edit(lambda span: span.update(parentSpanId=None)),
        _span_edit(lambda span: span["attributes"].append(_string(a.CHOSEN_MODEL, "other"))),  # the last one counts
        _span_edit(_set_value(a.PROPENSITY, {})),  # None
        _span_edit(_set_value(a.OPERATION_NAME, {"bytesValue": "aGk="})),
        _span_edit(_set_value(a.INPUT_TOKENS, {"intValue": 12})),  # a JSON number
        _span_edit(_set_value(a.OUTPUT_TOKENS, {"intValue": " 12"})),
        _span_edit(_set_value(a.COST_USD, {"doubleValue": 3})),
        lambda line: _edited(line, _set_value(a.LATENCY_MS, {"doubleValue": 1.25})).replace(b":1.25}", b":-0}"),
        lambda line: json.dumps(orjson.loads(line), separators=(", ", " : ")).encode() + b"\n",  # \\u escapes
    ]
    found = _assert_same(_one_file(tmp_path, _edit_lines(_lines(recorded / "traces"), edits)), tmp_path)
    assert (found["malformed"], found["duplicates"]) == (0, 0)


def test_the_parser_rows_are_the_lines(recorded: Path, tmp_path: Path) -> None:
    """Two objects on one line and one object over two lines: as many parsed rows as lines, none of them one."""
    lines = _lines(recorded / "traces")
    cut = lines[4].index(b'"scopeSpans"')
    shapes = [*lines[:3], lines[3].rstrip(b"\n") + lines[3], lines[4][:cut] + b"\n", lines[4][cut:], *lines[5:8]]
    found = _assert_same(_one_file(tmp_path, shapes), tmp_path)
    assert found["malformed"] == 3


def test_a_span_repeated_across_paths_keeps_its_first_line(recorded: Path, tmp_path: Path) -> None:
    lines = _lines(recorded / "traces")
    upper = _edited(lines[0], lambda span: span.update(traceId=span["traceId"].upper()))  # read line by line
    found = _assert_same(_one_file(tmp_path, [upper, *lines, lines[0]]), tmp_path)
    assert found["duplicates"] > 0


def test_reading_in_small_chunks_and_on_after_appends_agrees(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_stage, "CHUNK_BYTES", 50_000)  # many chunks, lines cut between reads
    lines = _lines(recorded / "traces")
    half = len(lines) // 2
    traces = _one_file(tmp_path, [*lines[:half], lines[half][:70]])
    first = _assert_same(traces, tmp_path)
    again = _assert_same(traces, tmp_path)
    assert again["lines"] == again["spans"] == again["requests"] == 0
    assert again["table requests"] == first["table requests"] and again["table feedback"] == first["table feedback"]
    with (traces / "spans-test.jsonl").open("ab") as file:
        file.write(b"".join([lines[half][70:], b"{broken\n", *lines[half + 1 :], *lines[:3]]))
    appended = _assert_same(traces, tmp_path)
    assert appended["lines"] == len(lines) - half + 4 and appended["malformed"] == 1 and appended["duplicates"] > 0
