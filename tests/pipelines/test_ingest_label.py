"""The ingest and label stages on real span files: the gateway and the replay provider run on loopback over a
slice of RouterBench, the traffic driver posts feedback, and the files they leave are ingested and labelled.
Two virtual keys (alice, bob) also post feedback to a second gateway, a replica that never saw their responses
and so records it unchecked: the label stage must ignore the feedback that breaks the rules, and count it."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml  # type: ignore[import-untyped]

from features import schema
from pipelines import ingest as ingest_stage
from pipelines import label as label_stage
from pipelines.ingest import ingest
from pipelines.label import LabelParams, label
from pipelines.loop_params import LoopPaths
from pipelines.outcomes import ImportStats, first_prompts, write_outcomes
from pipelines.splits import assign_split
from pipelines.traffic import Prompt, TrafficSummary, drive, prompts_of
from serving.config import load_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans

KEY = "sk-ingest-test"
SCORED, UNSCORED, UNCAPTURED = 40, 3, 5
"""Prompts driven with feedback, sent without feedback, and driven through a gateway that keeps no prompt text."""
RESCORES = (0.25, 0.75)
"""One more prompt gets two feedback posts: the gateway keeps the first and refuses the second (409)."""
KEYED = 2
"""Two more prompts, sent by alice's and bob's keys."""
ALICE_SCORE, STOLEN_SCORE, ALICE_AGAIN, MASTER_LATE, MASTER_ON_BOB = 0.9, 0.0, 0.1, 0.2, 0.6
"""Alice rates her response on the gateway that served it; on the other replica, bob rates it (not his), alice
again and the master key after her (repeats), and the master key rates bob's response (a rater role may)."""
LEGACY_ATTRIBUTES = (a.KEY_ID, a.FEEDBACK_RATER_ROLE)
"""What spans written before key ids were recorded lack."""


@dataclass(frozen=True)
class Keyed:
    """Alice's and bob's key ids and secrets, and the response id each got."""

    alice: tuple[str, str]
    bob: tuple[str, str]
    alice_response: str = ""
    bob_response: str = ""


@dataclass(frozen=True)
class Traffic:
    slice: pa.Table
    traces: Path
    scored: TrafficSummary
    uncaptured: TrafficSummary
    rescored_id: str
    keyed: Keyed
    root: Path

    @property
    def requests(self) -> int:
        return SCORED + UNSCORED + 1 + 1 + KEYED + UNCAPTURED  # + the rescored one + one failed request

    @property
    def known_feedback(self) -> int:
        """Feedback the gateway linked to its request: the drivers', the rescore's first, alice's first."""
        posted = self.scored.answered - self.scored.unrecorded + self.uncaptured.answered - self.uncaptured.unrecorded
        return posted + 1 + 1

    @property
    def feedback(self) -> int:
        return self.known_feedback + 4  # bob's, alice's second and the master key's two, on the other replica


def _gateway_config(root: Path, upstream: str, models: list[str], capture: bool) -> Path:
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream}} for m in models
        ],
        "general_settings": {"master_key": KEY},
        "routeiq_settings": {
            "routing": {"seed": 1},
            "access": {"key_store": str(root / "keys.sqlite"), "audit": {"path": str(root / "audit.sqlite")}},
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "telemetry": {
                "directory": str(root / "traces"),
                "export_interval_seconds": 0.1,
                "capture_prompts": capture,
            },
        },
    }
    path = root / f"gateway-{capture}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0)


def _ask(http: httpx.Client, prompt: Prompt) -> str:
    response = http.post(
        "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": prompt.text}]}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _rate(http: httpx.Client, response_id: str, score: float, status: int = 200) -> None:
    response = http.post("/v1/feedback", json={"id": response_id, "score": score})
    assert response.status_code == status, response.text


def _send_unscored(url: str, prompts: list[Prompt]) -> str:
    """Send `prompts` without feedback, then one more scored twice; return the twice-scored response's id."""
    with _client(url, KEY) as http:
        for prompt in prompts:
            response_id = _ask(http, prompt)
        _rate(http, response_id, RESCORES[0])
        _rate(http, response_id, RESCORES[1], status=409)
        messages = [{"role": "user", "content": prompts[-1].text}]
        failed = http.post("/v1/chat/completions", json={"model": "no-such-model", "messages": messages})
        assert failed.status_code == 404
    return response_id


def _send_keyed(url: str, prompts: list[Prompt]) -> Keyed:
    """Alice and bob (user keys) each send a prompt; bob may not rate alice's response here, alice does."""
    with _client(url, KEY) as admin:
        keys = [admin.post("/admin/keys", json={"role": "user"}).json() for _ in range(2)]
    alice, bob = ((str(k["id"]), str(k["key"])) for k in keys)
    with _client(url, alice[1]) as alice_http, _client(url, bob[1]) as bob_http:
        keyed = Keyed(alice, bob, _ask(alice_http, prompts[0]), _ask(bob_http, prompts[1]))
        _rate(bob_http, keyed.alice_response, STOLEN_SCORE, status=403)
        _rate(alice_http, keyed.alice_response, ALICE_SCORE)
    return keyed


def _rate_elsewhere(url: str, keyed: Keyed) -> None:
    """On a replica that never saw alice's and bob's responses (so it records feedback on them unchecked)."""
    with _client(url, keyed.alice[1]) as alice_http, _client(url, keyed.bob[1]) as bob_http, _client(url, KEY) as admin:
        _rate(bob_http, keyed.alice_response, STOLEN_SCORE)
        _rate(alice_http, keyed.alice_response, ALICE_AGAIN)
        _rate(admin, keyed.alice_response, MASTER_LATE)
        _rate(admin, keyed.bob_response, MASTER_ON_BOB)


@pytest.fixture(scope="module")
def traffic(routerbench: tuple[pa.Table, ImportStats], tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    root = tmp_path_factory.mktemp("ingest")
    table = first_prompts(routerbench[0], {schema.TEST: SCORED + UNSCORED + 1 + KEYED + UNCAPTURED})
    outcomes = root / "outcomes.parquet"
    write_outcomes(table, outcomes)
    prompts = prompts_of(table, None, None)
    models = sorted(set(table[schema.MODEL].to_pylist()))
    with replay_running(ReplaySettings(outcomes=outcomes)) as upstream:
        with running(load_config(_gateway_config(root, upstream, models, capture=True))) as url:
            scored = asyncio.run(drive(url, prompts[:SCORED], api_key=KEY))
            rescored_id = _send_unscored(url, prompts[SCORED : SCORED + UNSCORED + 1])
            keyed = _send_keyed(url, prompts[SCORED + UNSCORED + 1 : SCORED + UNSCORED + 1 + KEYED])
        with running(load_config(_gateway_config(root, upstream, models, capture=False))) as url:
            uncaptured = asyncio.run(drive(url, prompts[-UNCAPTURED:], api_key=KEY))
            _rate_elsewhere(url, keyed)
    assert scored.failed == uncaptured.failed == 0
    return Traffic(table, root / "traces", scored, uncaptured, rescored_id, keyed, root)


@pytest.fixture(scope="module")
def warehouse(traffic: Traffic) -> tuple[Path, ingest_stage.IngestStats]:
    path = traffic.root / "warehouse.duckdb"
    return path, ingest(traffic.traces, path)


def _count(path: Path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _rows(path: Path, query: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(query).to_arrow_table().to_pylist()


def _spans_in(line: bytes) -> int:
    request = orjson.loads(line)
    return sum(len(scope["spans"]) for rs in request["resourceSpans"] for scope in rs["scopeSpans"])


def _with_fresh_ids(line: bytes, change: dict[str, Any] | None = None) -> bytes:
    """The same spans under new span ids; `change` replaces attribute values of the first request span."""
    request = orjson.loads(line)
    spans = [span for rs in request["resourceSpans"] for scope in rs["scopeSpans"] for span in scope["spans"]]
    for span in spans:
        span["spanId"] = secrets.token_hex(8)
    first = next(span for span in spans if span["name"] == a.CHAT_SPAN_NAME)
    for attribute in first["attributes"]:
        attribute["value"] = (change or {}).get(attribute["key"], attribute["value"])
    return orjson.dumps(request) + b"\n"


def _requests_in(line: bytes) -> int:
    return line.count(b'"name":"chat"')


def _biggest_file(traces: Path) -> Path:
    return max(traces.glob("*.jsonl"), key=lambda p: p.stat().st_size)


def test_ingest_stores_one_row_per_request_and_per_feedback_sent(
    traffic: Traffic, warehouse: tuple[Path, ingest_stage.IngestStats]
) -> None:
    path, stats = warehouse
    assert (stats.requests, stats.feedback) == (traffic.requests, traffic.feedback)
    assert (stats.malformed, stats.incomplete, stats.duplicates, stats.other_spans) == (0, 0, 0, 0)
    assert stats.files == stats.files_read == len(list(traffic.traces.glob("*.jsonl"))) >= 2
    assert (_count(path, "requests"), _count(path, "feedback")) == (traffic.requests, traffic.feedback)
    spans = {s.span_id: s for s in read_spans(traffic.traces)}
    for row in _rows(path, "SELECT * FROM requests"):
        span = spans[row["span_id"]]
        assert row["chosen_model"] == span.attributes.get(a.CHOSEN_MODEL)
        assert row["prompt_text"] == span.attributes.get(a.PROMPT_TEXT)
        assert row["cost_usd"] == span.attributes.get(a.COST_USD)
        assert row["status"] == span.attributes[a.HTTP_STATUS]
        assert row["key_id"] == span.attributes[a.KEY_ID] and row["key_id"] is not None
        assert int(row["started_at"].timestamp() * 1e6) == pytest.approx(span.start_unix_nano / 1000, abs=1)
    for row in _rows(path, "SELECT * FROM feedback"):
        span = spans[row["span_id"]]
        assert (row["key_id"], row["rater_role"]) == (span.attributes[a.KEY_ID], span.attributes[a.FEEDBACK_RATER_ROLE])
    query = "SELECT f.request_span_id, r.span_id FROM feedback f JOIN requests r USING (response_id) WHERE f.known"
    linked = _rows(path, query)
    assert len(linked) == traffic.known_feedback and all(r["request_span_id"] == r["span_id"] for r in linked)
    owners = _rows(path, "SELECT response_id, key_id FROM requests WHERE key_id <> 'master'")
    keyed = traffic.keyed
    assert sorted(owners, key=str) == sorted(
        [
            {"response_id": keyed.alice_response, "key_id": keyed.alice[0]},
            {"response_id": keyed.bob_response, "key_id": keyed.bob[0]},
        ],
        key=str,
    )


def test_ingesting_the_same_files_again_adds_nothing(
    traffic: Traffic, warehouse: tuple[Path, ingest_stage.IngestStats]
) -> None:
    path, first = warehouse
    again = ingest(traffic.traces, path)
    assert (again.files_read, again.lines, again.requests, again.feedback) == (0, 0, 0, 0)
    copy = shutil.copytree(traffic.traces, traffic.root / "traces-copy")  # new paths: read again, all duplicates
    copied = ingest(copy, path)
    assert (copied.requests, copied.feedback, copied.duplicates) == (0, 0, first.spans)
    assert (_count(path, "requests"), _count(path, "feedback")) == (traffic.requests, traffic.feedback)


def test_a_growing_file_is_read_on_from_where_the_last_run_stopped(traffic: Traffic, tmp_path: Path) -> None:
    source = _biggest_file(traffic.traces)
    lines = source.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    traces, path = tmp_path / "traces", tmp_path / "warehouse.duckdb"
    traces.mkdir()
    growing = traces / source.name
    growing.write_bytes(b"".join(lines[:half]) + lines[half][:50])  # a writer is midway through a line
    first = ingest(traces, path)
    assert (first.lines, first.incomplete, first.malformed) == (half, 1, 0)
    assert first.spans == sum(_spans_in(line) for line in lines[:half])
    growing.write_bytes(b"".join(lines))
    second = ingest(traces, path)
    assert (second.lines, second.incomplete, second.malformed, second.duplicates) == (len(lines) - half, 0, 0, 0)
    assert second.spans == sum(_spans_in(line) for line in lines[half:])
    assert first.requests + second.requests == _count(path, "requests")
    assert _rows(path, "SELECT bytes_read, lines_read FROM ingested_files") == [
        {"bytes_read": growing.stat().st_size, "lines_read": len(lines)}
    ]
    shutil.copy(source, traces / "spans-zz-new.jsonl")  # a whole new file is read from its start
    assert ingest(traces, path).lines == len(lines)


def test_malformed_lines_are_counted_and_stored_and_the_rest_is_read(traffic: Traffic, tmp_path: Path) -> None:
    source = _biggest_file(traffic.traces)
    lines = source.read_bytes().splitlines(keepends=True)
    request_line = next(line for line in lines if b'"name":"chat"' in line)
    broken_span = request_line.replace(b'"spanId":"', b'"spanId":"zz', 1)  # one bad span; its siblings are fine
    wrong_type = _with_fresh_ids(request_line, {a.PROPENSITY: {"stringValue": "high"}})
    fresh = _with_fresh_ids(request_line)
    traces, path = tmp_path / "traces", tmp_path / "warehouse.duckdb"
    traces.mkdir()
    damaged = traces / source.name
    damaged.write_bytes(b"".join([*lines, b"{not json\n", broken_span, b"\n", wrong_type, fresh, fresh[:40]]))
    stats = ingest(traces, path)
    assert (stats.malformed, stats.incomplete, stats.lines) == (3, 1, len(lines) + 5)
    assert stats.duplicates == _spans_in(broken_span) - 1
    original = sum(_requests_in(line) for line in lines)
    assert stats.requests == _count(path, "requests") == original + _requests_in(wrong_type) - 1 + _requests_in(fresh)
    stored = _rows(path, "SELECT line, reason FROM malformed_lines ORDER BY line")
    assert [r["line"] for r in stored] == [len(lines) + 1, len(lines) + 2, len(lines) + 4]
    assert "spanId" in stored[1]["reason"] and "wrong type" in stored[2]["reason"]
    assert len(stats.malformed_examples) == 3 and f"{damaged}:{len(lines) + 1}: " in stats.malformed_examples[0]
    with damaged.open("ab") as file:
        file.write(fresh[40:])  # the writer finishes its line
    finished = ingest(traces, path)
    assert (finished.lines, finished.malformed, finished.incomplete, finished.duplicates) == (1, 0, 0, _spans_in(fresh))
    assert _count(path, "malformed_lines") == 3


def test_label_makes_one_outcome_row_per_scored_request(
    traffic: Traffic, warehouse: tuple[Path, ingest_stage.IngestStats]
) -> None:
    params = LabelParams()
    table, stats = label(warehouse[0], params)
    rows = table.to_pylist()
    keyed = traffic.keyed
    chosen = {
        _prompt_of(warehouse[0], traffic.rescored_id): RESCORES[0],
        _prompt_of(warehouse[0], keyed.alice_response): ALICE_SCORE,
        _prompt_of(warehouse[0], keyed.bob_response): MASTER_ON_BOB,
    }
    scored = SCORED - traffic.scored.unrecorded
    assert stats.rows == len(rows) == scored + 1 + KEYED and stats.requests == traffic.requests
    assert stats.dropped == {
        "failed": 1,
        "served_by_fallback": 0,
        "no_prompt_text": UNCAPTURED,
        "no_feedback": UNSCORED,
        "invalid_score": 0,
    }
    recorded = {(r[schema.PROMPT_ID], r[schema.MODEL]): r for r in traffic.slice.to_pylist()}
    models = {model for _, model in recorded}
    assert len(models) == 11
    for row in rows:
        truth = recorded[row[schema.PROMPT_ID], row[schema.MODEL]]
        assert row[schema.PROMPT] == truth[schema.PROMPT]
        assert row[schema.QUALITY] == chosen.get(row[schema.PROMPT_ID], truth[schema.QUALITY])
        assert row[schema.COST_USD] == pytest.approx(truth[schema.COST_USD])
        assert row[schema.COST_SOURCE] == schema.COST_RECORDED
        assert row[schema.PROPENSITY] == pytest.approx(1 / len(models))
        assert (row[schema.TASK], row[schema.SOURCE], row[schema.OBSERVED_AT].tzname()) == ("traffic", "traces", "UTC")
        assert row[schema.SPLIT] == assign_split(row[schema.PROMPT_ID], [], params.split)
    assert sum(stats.per_split.values()) == len(rows) and stats.prompts == len({r[schema.PROMPT_ID] for r in rows})


def test_a_request_a_fallback_served_is_not_an_outcome_of_the_chosen_model(traffic: Traffic, tmp_path: Path) -> None:
    traces, path = tmp_path / "traces", tmp_path / "warehouse.duckdb"
    shutil.copytree(traffic.traces, traces)
    before, _ = _label_after_ingest(traces, path)
    source = _biggest_file(traces)
    request = orjson.loads(_with_fresh_ids(source.read_bytes().splitlines()[0]))
    spans = [span for rs in request["resourceSpans"] for scope in rs["scopeSpans"] for span in scope["spans"]]
    chats = [span for span in spans if span["name"] == a.CHAT_SPAN_NAME]
    for span in chats:
        span["attributes"].append({"key": a.SERVED_MODEL, "value": {"stringValue": "a-fallback"}})
    (traces / "spans-zz-fallback.jsonl").write_bytes(orjson.dumps(request) + b"\n")
    after, stats = _label_after_ingest(traces, path)
    assert stats.dropped["served_by_fallback"] == len(chats) > 0
    assert after.num_rows == before.num_rows  # none of the copies (scored or not) became a row
    assert _count(path, "requests") == traffic.requests + len(chats)


def _label_after_ingest(traces: Path, path: Path) -> tuple[pa.Table, Any]:
    ingest(traces, path)
    return label(path, LabelParams())


def _prompt_of(path: Path, response_id: str) -> str:
    (row,) = _rows(path, f"SELECT prompt_hash FROM requests WHERE response_id = '{response_id}'")
    return str(row["prompt_hash"])


def _quality(table: pa.Table, path: Path, response_id: str) -> float | None:
    """The outcome row's quality for the request that got `response_id`; None when it has no row."""
    prompt = _prompt_of(path, response_id)
    found = [r[schema.QUALITY] for r in table.to_pylist() if r[schema.PROMPT_ID] == prompt]
    assert len(found) <= 1
    return found[0] if found else None


def test_the_first_feedback_on_a_response_is_its_quality(
    traffic: Traffic, warehouse: tuple[Path, ingest_stage.IngestStats]
) -> None:
    query = f"SELECT prompt_hash, chosen_model FROM requests WHERE response_id = '{traffic.rescored_id}'"
    (row,) = _rows(warehouse[0], query)
    table, _ = label(warehouse[0], LabelParams())
    (labelled,) = [r for r in table.to_pylist() if r[schema.PROMPT_ID] == row["prompt_hash"]]
    assert labelled[schema.QUALITY] == RESCORES[0] and labelled[schema.MODEL] == row["chosen_model"]


def test_feedback_from_another_key_or_after_the_first_is_ignored_and_counted(
    traffic: Traffic, warehouse: tuple[Path, ingest_stage.IngestStats]
) -> None:
    path, keyed = warehouse[0], traffic.keyed
    table, stats = label(path, LabelParams())
    # Bob's score on alice's response is not his to give; alice's second and the master key's later one are
    # repeats. The master key (admin, a rater role) may rate bob's response, on a replica that could not check.
    assert _quality(table, path, keyed.alice_response) == ALICE_SCORE
    assert _quality(table, path, keyed.bob_response) == MASTER_ON_BOB
    assert (stats.feedback_not_owner, stats.feedback_repeated, stats.feedback_unmatched) == (1, 2, 0)
    assert "1 from a key not the request's, 2 repeated" in stats.summary()
    # With no rater roles, only a request's own key rates it: the master key's scores on their responses go too.
    table, strict = label(path, LabelParams(feedback_raters=()))
    assert _quality(table, path, keyed.alice_response) == ALICE_SCORE
    assert _quality(table, path, keyed.bob_response) is None
    assert (strict.feedback_not_owner, strict.feedback_repeated, strict.dropped["no_feedback"]) == (3, 1, UNSCORED + 1)


def _without(line: bytes, keys: tuple[str, ...]) -> bytes:
    """The same spans without the attributes `keys`."""
    request = orjson.loads(line)
    for span in (span for rs in request["resourceSpans"] for scope in rs["scopeSpans"] for span in scope["spans"]):
        span["attributes"] = [kv for kv in span["attributes"] if kv["key"] not in keys]
    return orjson.dumps(request) + b"\n"


def test_spans_from_before_key_ids_are_labelled_as_before(traffic: Traffic, tmp_path: Path) -> None:
    traces, path = tmp_path / "traces", tmp_path / "warehouse.duckdb"
    traces.mkdir()
    for source in traffic.traces.glob("*.jsonl"):
        lines = source.read_bytes().splitlines()
        (traces / source.name).write_bytes(b"".join(_without(line, LEGACY_ATTRIBUTES) for line in lines))
    table, stats = _label_after_ingest(traces, path)
    assert _rows(path, "SELECT DISTINCT key_id FROM requests UNION SELECT DISTINCT key_id FROM feedback") == [
        {"key_id": None}
    ]
    # Nothing can be checked, so nothing is refused as not the owner's, and the latest feedback wins, as before.
    assert (stats.feedback_not_owner, stats.feedback_repeated) == (0, 3)
    assert _quality(table, path, traffic.keyed.alice_response) == MASTER_LATE
    assert _quality(table, path, traffic.keyed.bob_response) == MASTER_ON_BOB
    assert stats.rows == SCORED - traffic.scored.unrecorded + 1 + KEYED


def test_a_warehouse_made_before_key_ids_gains_their_columns(traffic: Traffic, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    ingest(traffic.traces, path)
    with duckdb.connect(str(path)) as con:  # as the warehouse was before the columns existed
        for table, column in (("requests", "key_id"), ("feedback", "key_id"), ("feedback", "rater_role")):
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    again = ingest(shutil.copytree(traffic.traces, tmp_path / "again"), path)  # new paths: read again
    assert (again.requests, again.feedback, again.malformed) == (0, 0, 0)
    counted = "SELECT (SELECT count(key_id) FROM requests) + (SELECT count(rater_role) FROM feedback) AS n"
    assert _rows(path, counted) == [{"n": 0}]  # the rows stored before stay as they were
    table, stats = label(path, LabelParams())
    assert stats.rows == SCORED - traffic.scored.unrecorded + 1 + KEYED and stats.feedback_not_owner == 0


def test_bootstrap_rows_keep_their_splits_and_traffic_follows_them(
    traffic: Traffic, warehouse: tuple[Path, ingest_stage.IngestStats], tmp_path: Path
) -> None:
    public = traffic.slice.set_column(
        traffic.slice.schema.get_field_index(schema.SPLIT),
        schema.SPLIT,
        pa.array([schema.VALID] * traffic.slice.num_rows),
    )
    write_outcomes(public, tmp_path / "public.parquet")
    table, stats = label(warehouse[0], LabelParams(bootstrap=(tmp_path / "public.parquet",)))
    assert stats.bootstrap_rows == traffic.slice.num_rows and table.num_rows == stats.rows + stats.bootstrap_rows
    assert set(table[schema.SPLIT].to_pylist()) == {schema.VALID} and stats.per_split[schema.VALID] == stats.rows


def test_main_reads_the_loop_section_and_writes_metrics(
    traffic: Traffic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    section = {"traces": str(traffic.traces), "warehouse": "wh/warehouse.duckdb", "split": {"seed": 3}}
    Path("params.yaml").write_text(yaml.safe_dump({"loop": section, "data": {"dir": "elsewhere"}}))
    ingest_stage.main()
    label_stage.main()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("ingest: ") and out[1].startswith("label: ")
    ingested = json.loads(ingest_stage.STATS_FILE.read_text())
    assert (ingested["requests"], ingested["feedback"]) == (traffic.requests, traffic.feedback)
    labelled = json.loads(label_stage.STATS_FILE.read_text())
    written = pq.read_metadata(LoopPaths().outcomes).num_rows
    assert labelled["rows"] == written == SCORED - traffic.scored.unrecorded + 1 + KEYED
    assert (labelled["feedback_not_owner"], labelled["feedback_repeated"]) == (1, 2)
    assert "1 from a key not the request's, 2 repeated" in out[1]
