"""The retraining watcher without the gateway: when it decides to run the loop (a pure function), how it counts new
feedback in span files the gateway's real telemetry writes, what it remembers across restarts (after a real
ingest), and how a run that fails (real DVC) is reported in one line and retried at the next trigger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from opentelemetry.trace import Link

from pipelines.durations import parse_duration
from pipelines.feedback_scan import ingest_progress, scan_feedback
from pipelines.ingest import ingest
from pipelines.loop_params import LoopPaths
from pipelines.loop_run import run_once
from pipelines.watch import Stop, Watcher, WatchParams, WatchState, decide, watch, watch_params
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans
from serving.telemetry.settings import TelemetrySettings
from serving.telemetry.tracing import Telemetry

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600.0
MENTION = 'a prompt that quotes a span: {"name":"routeiq.feedback"}'
"""Captured prompt text that names the feedback span: escaped in the file, so it must not count."""


def _write_spans(directory: Path, feedback: int, requests: int = 3) -> None:
    """Request spans and `feedback` feedback spans linked to the first, through the gateway's telemetry."""
    settings = TelemetrySettings(
        directory=directory, capture_prompts=True, export_interval_seconds=60.0, max_export_batch_size=4
    )
    telemetry = Telemetry(settings, resource_attributes={})
    telemetry.start()
    spans = [
        telemetry.tracer.start_span(a.CHAT_SPAN_NAME, attributes={a.PROMPT_TEXT: MENTION}) for _ in range(requests)
    ]
    for span in spans:
        span.end()
    for i in range(feedback):
        score = {a.FEEDBACK_RESPONSE_ID: f"chatcmpl-{i}", a.FEEDBACK_SCORE: 0.5}
        telemetry.tracer.start_span(
            a.FEEDBACK_SPAN_NAME, links=[Link(spans[0].get_span_context())], attributes=score
        ).end()
    telemetry.shutdown()


def _reference_count(directory: Path) -> int:
    return sum(1 for span in read_spans(directory) if span.name == a.FEEDBACK_SPAN_NAME)


@pytest.mark.parametrize(
    ("new", "since", "every", "runs"),
    [
        (0, 0.0, None, False),  # nothing new
        (0, 1e9, HOUR, False),  # nothing new, however long ago the last run: never retrain
        (99, 0.0, None, False),  # below the threshold, no schedule
        (99, HOUR - 1, HOUR, False),  # below the threshold, schedule not elapsed
        (100, 0.0, None, True),  # at the threshold
        (5000, 0.0, HOUR, True),  # above it
        (1, HOUR, HOUR, True),  # schedule elapsed with some new feedback
    ],
)
def test_the_trigger(new: int, since: float, every: float | None, runs: bool) -> None:
    decision = decide(new, since, min_feedback=100, every=every)
    assert decision.run is runs, decision
    assert decision.reason.endswith(": run" if runs else ": wait")


def test_a_waiting_decision_says_what_it_waits_for() -> None:
    assert decide(40, 600.0, 100, HOUR).reason == "40 new < 100 (min feedback), or by schedule in 50m 00s: wait"
    assert decide(0, 600.0, 100, HOUR).reason == "nothing new since the last run: wait"
    assert decide(3, 2 * HOUR, 100, HOUR).reason == "3 new, 2h 00m since the last run ≥ every 1h 00m: run"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("6h", 21600.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6x", "-5", "0", "h", "1h30m"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_projects_params_and_the_options_over_them(tmp_path: Path) -> None:
    params = watch_params(REPO / "params.yaml")
    assert (params.min_feedback, params.every, params.interval) == (1000, 6 * HOUR, 60.0)
    overridden = watch_params(REPO / "params.yaml", every="off", interval="5m", min_feedback=None)
    assert (overridden.min_feedback, overridden.every, overridden.interval) == (1000, None, 300.0)
    assert watch_params(tmp_path / "absent.yaml") == WatchParams()


def test_new_feedback_is_counted_once_on_complete_lines(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    assert scan_feedback(traces, {}).feedback == 0  # no span directory yet: nothing new
    _write_spans(traces, feedback=9)
    first = scan_feedback(traces, {})
    assert first.feedback == _reference_count(traces) == 9
    assert scan_feedback(traces, first.offsets).feedback == 0
    _write_spans(traces, feedback=5)  # a second file, as a restarted gateway writes
    second = scan_feedback(traces, first.offsets)
    assert second.feedback == 5 and second.files_read == 1
    (path,) = [Path(p) for p in first.offsets]
    line = path.read_bytes().splitlines(keepends=True)[-1]
    with path.open("ab") as file:
        file.write(line[:-40])  # a line the gateway is still writing
    third = scan_feedback(traces, second.offsets)
    assert third.feedback == 0 and third.offsets == second.offsets
    with path.open("ab") as file:
        file.write(line[-40:])
    assert scan_feedback(traces, third.offsets).feedback == line.count(b'"name":"routeiq.feedback"') > 0


def test_a_replaced_shorter_file_is_counted_again(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    _write_spans(traces, feedback=6)
    scan = scan_feedback(traces, {})
    (path,) = [Path(p) for p in scan.offsets]
    first_line = path.read_bytes().splitlines(keepends=True)[0]
    path.write_bytes(first_line)
    assert scan_feedback(traces, scan.offsets).feedback == first_line.count(b'"name":"routeiq.feedback"')


def test_a_fresh_watcher_starts_from_the_ingests_progress(tmp_path: Path) -> None:
    traces, warehouse = tmp_path / "traces", tmp_path / "warehouse.duckdb"
    _write_spans(traces, feedback=7)
    assert WatchState.load(tmp_path / "watch.json", warehouse, 0.0).offsets == {}  # no ingest yet: all is new
    stats = ingest(traces, warehouse)
    assert stats.feedback == 7
    state = WatchState.load(tmp_path / "watch.json", warehouse, 0.0)
    assert state.offsets == ingest_progress(warehouse) != {}
    assert scan_feedback(traces, state.offsets).feedback == 0  # what the loop ingested is not new
    _write_spans(traces, feedback=2)
    assert scan_feedback(traces, state.offsets).feedback == 2


def test_an_unreadable_state_is_one_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "watch.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match="delete it to start afresh"):
        WatchState.load(state, tmp_path / "warehouse.duckdb", 0.0)


def test_a_failing_run_is_one_line_and_is_retried_at_the_next_trigger(tmp_path: Path) -> None:
    """The project is no DVC repository: real `dvc repro` fails each time; the watcher reports and carries on."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"loop": {"traces": "traces"}}))
    _write_spans(tmp_path / "traces", feedback=4)
    lines: list[str] = []
    params = WatchParams(min_feedback=3, every=None, interval=0.01)
    watcher = Watcher(
        tmp_path, LoopPaths(traces=Path("traces")), params, lambda echo: run_once(tmp_path, echo), lines.append
    )
    state = watch(watcher, Stop(), max_runs=2)
    failures = [line for line in lines if " failed after " in line]
    assert len(failures) == 2, lines
    assert all("dvc repro register failed" in f and "ERROR" in f for f in failures), failures
    assert all("4 new feedback stay pending, retried at the next trigger" in f for f in failures)
    assert "check: +4 feedback in 1 file; 4 new ≥ 3 (min feedback): run" in lines[0]
    assert "check: +0 feedback; 4 new ≥ 3 (min feedback): run" in lines[2]  # the retry
    assert (state.runs, state.failed_runs, state.new_feedback) == (0, 2, 4)
    saved = json.loads((tmp_path / params.state).read_text())
    assert saved["failed_runs"] == 2 and saved["last_result"].startswith("failed: dvc repro register failed")
    assert (tmp_path / params.log).read_text().strip()  # dvc's own output, for the details


def test_a_stop_before_the_first_check_checks_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    stop = Stop()
    stop.requested = "SIGTERM"
    watcher = Watcher(tmp_path, LoopPaths(), WatchParams(), lambda echo: pytest.fail("ran"), lines.append)
    assert watch(watcher, stop).runs == 0
    assert len(lines) == 1 and "stopped by SIGTERM after 0 runs" in lines[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--every", "6x", "--watch"], "Invalid value for '--every': '6x' is not a duration"),
        (["--interval", "0", "--watch"], "Invalid value for '--interval': '0' is not a positive duration"),
        (["--min-feedback", "0", "--watch"], "'--min-feedback'"),
        (["--max-runs", "2"], "--max-runs: only with --watch"),
    ],
)
def test_bad_options_are_one_line(options: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "loop", *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and message in done.stderr, done.stderr
