"""`routeiq loop --watch` end to end on real replay traffic: a gateway with no router logs RouterBench prompts with
feedback; the watcher counts it, runs the real loop (DVC, DuckDB, Optuna, MLflow) and the promotion gate once it is
enough, then stops; restarted, it remembers what it learned from (no retraining) and stops cleanly on SIGTERM.
The watcher is the `routeiq` process a user starts. (The schedule trigger is tested in test_watch.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from features import schema
from pipelines import demo_gateway
from pipelines.closed_loop import tracking_store
from pipelines.demo_steps import running_replay_provider
from pipelines.feedback_scan import ingest_progress
from pipelines.outcomes import ImportStats, write_outcomes
from pipelines.traffic import prompts_of
from pipelines.workspace import prepare
from registry.versions import production
from serving.settings import DEFAULT_REFERENCE
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans

REPO = Path(__file__).resolve().parents[2]
MODELS = ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"]
PROFILE: dict[str, Any] = {
    "families": ["knn", "cheapest", "strongest"],
    "trials": 1,
    "bootstrap": [],
    "cost_weight": 20.0,
}
FIRST, PASSES, LATER = 150, 2, 12
"""Prompts logged before the first run (each sent PASSES times), then a few more."""
MIN_FEEDBACK = 200
STATE = Path("data/loop/watch.json")
RUN_TIMEOUT_S = 480

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Project:
    root: Path
    workspace: Path
    outcomes: Path
    config: Path


@pytest.fixture(scope="module")
def project(routerbench: tuple[pa.Table, ImportStats], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("watch")
    table = routerbench[0].filter(pc.is_in(routerbench[0][schema.MODEL], pa.array(MODELS)))
    outcomes = root / "routerbench.parquet"
    write_outcomes(table, outcomes)
    workspace = prepare(root / "project", REPO, PROFILE)
    with tracking_store(workspace / "mlflow.db"), running_replay_provider(outcomes, root) as upstream:
        # One config for every gateway started here: writing it starts a fresh trace directory.
        config = demo_gateway.write_config(
            workspace, upstream, MODELS, DEFAULT_REFERENCE, cost_weight=PROFILE["cost_weight"], poll_seconds=1.0
        )
        yield Project(root, workspace, outcomes, config)


def _log_traffic(project: Project, first: int, count: int, passes: int) -> int:
    """Send `count` train prompts (after the first `first`) `passes` times through a gateway with feedback; stop
    the gateway (its spans are flushed to the files) and return how many feedback spans it wrote."""
    prompts = prompts_of(pq.read_table(project.outcomes), schema.TRAIN, first + count)[first:] * passes
    traces = project.workspace / demo_gateway.TRACES
    before = _feedback_spans(traces)
    with demo_gateway.running_gateway(project.config, project.workspace) as gateway:
        summary = demo_gateway.drive_gateway(gateway, prompts)
    assert summary.failed == 0
    return _feedback_spans(traces) - before


def _feedback_spans(traces: Path) -> int:
    """Feedback spans in the files, read by the telemetry reader (the reference for what a line holds)."""
    if not traces.is_dir():
        return 0
    return sum(1 for span in read_spans(traces) if span.name == a.FEEDBACK_SPAN_NAME)


def _command(*options: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "loop", "--watch", "--interval", "1", *options]


def _environment(project: Project) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project.workspace / 'mlflow.db'}"}


def _watch_until_done(project: Project, *options: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        _command(*options),
        cwd=project.workspace,
        env=_environment(project),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done


def _state(project: Project) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((project.workspace / STATE).read_text())
    return state


def _registered(project: Project) -> dict[str, int]:
    registered = json.loads((project.workspace / "data/loop/registered.json").read_text())
    return {family: int(version) for family, version in registered["versions"].items()}


def _production_after(verdict: str, project: Project, before: int | None) -> None:
    """The gate's verdict and the registry agree: a promotion moved Production to that version, a refusal kept it."""
    current = production(MlflowClient())
    promoted = re.search(r"(\w+) v(\d+) → Production", verdict)
    if promoted:
        assert current is not None and current.version == int(promoted[2]), verdict
        assert _registered(project)[promoted[1]] == current.version
    else:
        assert "nothing promoted" in verdict, verdict
        assert (current.version if current else None) == before, verdict


@pytest.fixture(scope="module")
def first_run(project: Project) -> tuple[int, subprocess.CompletedProcess[str]]:
    feedback = _log_traffic(project, 0, FIRST, PASSES)
    done = _watch_until_done(project, "--min-feedback", str(MIN_FEEDBACK), "--every", "off", "--max-runs", "1")
    return feedback, done


def test_enough_new_feedback_runs_the_loop_and_the_gate(
    project: Project, first_run: tuple[int, subprocess.CompletedProcess[str]]
) -> None:
    feedback, done = first_run
    assert feedback >= MIN_FEEDBACK
    lines = done.stdout.splitlines()
    checks = [line for line in lines if "check:" in line]
    assert len(checks) == 1 and f"+{feedback} feedback" in checks[0] and checks[0].endswith(": run"), lines
    (ran,) = [line for line in lines if "run 1 done" in line]
    _production_after(ran, project, before=None)
    assert lines[-1].endswith("stopped after 1 run (max runs); state in " + str(project.workspace / STATE))
    state = _state(project)
    assert state["runs"] == 1 and state["failed_runs"] == 0 and state["new_feedback"] == 0
    assert state["feedback_seen"] == feedback
    warehouse = project.workspace / "data/loop/warehouse.duckdb"
    assert state["offsets"] == ingest_progress(warehouse)  # what the run ingested is no longer new
    assert set(_registered(project)) == set(PROFILE["families"])  # each a new version, judged by the gate


def test_a_restart_remembers_and_sigterm_stops_it_between_runs(
    project: Project, first_run: tuple[int, subprocess.CompletedProcess[str]]
) -> None:
    later = _log_traffic(project, FIRST, LATER, 1)
    assert 0 < later < MIN_FEEDBACK
    before = _state(project)
    command = _command("--min-feedback", str(MIN_FEEDBACK), "--every", "6h")
    with subprocess.Popen(
        command,
        cwd=project.workspace,
        env=_environment(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        assert watcher.stdout is not None
        lines = [
            watcher.stdout.readline().rstrip(),
            watcher.stdout.readline().rstrip(),
        ]  # what it watches, then its first check
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    lines += out.splitlines()
    assert watcher.returncode == 0, [*lines, err]
    assert "Traceback" not in err
    assert f"check: +{later} feedback" in lines[1] and f"{later} new < {MIN_FEEDBACK}" in lines[1], lines
    assert lines[1].endswith(": wait") and "by schedule in 5h" in lines[1], lines
    assert "stopped by SIGTERM after 0 runs" in lines[-1], lines
    after = _state(project)
    assert after["runs"] == before["runs"] == 1
    assert after["new_feedback"] == later and after["since"] == before["since"]
