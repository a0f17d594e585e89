"""The traffic driver and `routeiq serve` as users run them: the console scripts in subprocesses against a
real gateway and replay provider on loopback; feedback lands against the requests it scores."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import yaml  # type: ignore[import-untyped]

from features import schema
from pipelines.outcomes import first_prompts, import_source, read_outcomes, write_outcomes
from pipelines.traffic import prompts_of
from serving.config import load_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans

KEY = "sk-traffic-test"


def _routeiq(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("routeiq", path=str(Path(sys.executable).parent)) or "routeiq"
    env = {**os.environ, "ROUTEIQ_API_KEY": KEY}
    return subprocess.run([exe, *args], check=False, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def outcomes(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    path = tmp_path_factory.mktemp("traffic") / "outcomes.parquet"
    write_outcomes(first_prompts(table, {schema.TRAIN: 20, schema.TEST: 20}), path)
    return path


@pytest.fixture(scope="module")
def gateway(outcomes: Path) -> Iterator[tuple[str, Path]]:
    traces = outcomes.parent / "traces"
    models = sorted(set(read_outcomes(outcomes)[schema.MODEL].to_pylist()))
    with replay_running(ReplaySettings(outcomes=outcomes)) as upstream:
        config = {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream}} for m in models
            ],
            "general_settings": {"master_key": KEY},
            "routeiq_settings": {
                "routing": {"seed": 1},
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(traces), "export_interval_seconds": 0.1},
            },
        }
        path = outcomes.parent / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        with running(load_config(path)) as url:
            yield url, traces


def test_prompts_of_groups_every_models_outcome_per_prompt(outcomes: Path) -> None:
    table = read_outcomes(outcomes)
    prompts = prompts_of(table, schema.TEST, 5)
    assert len(prompts) == 5 and [p.prompt_id for p in prompts] == sorted(p.prompt_id for p in prompts)
    test = table.filter(pa.compute.equal(table[schema.SPLIT], schema.TEST))
    assert all(len(p.outcomes) == len(set(test[schema.MODEL].to_pylist())) for p in prompts)


def test_replay_drives_the_gateway_and_posts_feedback(gateway: tuple[str, Path], outcomes: Path) -> None:
    url, traces = gateway
    done = _routeiq("replay", "--gateway", url, "--outcomes", str(outcomes), "--split", "test", "--limit", "12")
    assert done.returncode == 0, done.stderr
    assert "12 prompts in" in done.stdout and "0 failed" in done.stdout
    shares = [float(line.split("%")[0]) for line in done.stdout.splitlines()[1:] if "%" in line]
    assert sum(shares) == pytest.approx(100.0, abs=0.5)
    assert "12/12 sent" in done.stderr  # progress

    def scored() -> list:  # type: ignore[type-arg]
        return [s for s in read_spans(traces) if s.name == a.FEEDBACK_SPAN_NAME]

    deadline = time.monotonic() + 10
    while len(scored()) < 12 and time.monotonic() < deadline:
        time.sleep(0.1)
    feedback = scored()
    requests = {s.attributes[a.RESPONSE_ID]: s for s in read_spans(traces) if a.RESPONSE_ID in s.attributes}
    unrecorded = re.search(r"(\d+) unrecorded", done.stdout)
    assert len(feedback) == 12 - (int(unrecorded.group(1)) if unrecorded else 0)
    for span in feedback:
        request = requests[span.attributes[a.FEEDBACK_RESPONSE_ID]]
        assert span.attributes[a.FEEDBACK_KNOWN] is True and span.attributes[a.FEEDBACK_SOURCE] == "replay"
        assert (request.trace_id, request.span_id) in span.links


def test_cli_errors_are_one_line(tmp_path: Path, outcomes: Path) -> None:
    missing = _routeiq("serve", "--config", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "cannot read gateway config" in missing.stderr
    refused = _routeiq("replay", "--gateway", "http://127.0.0.1:9", "--outcomes", str(outcomes), "--split", "nope")
    assert refused.returncode == 2 and "use train, valid, test or all" in refused.stderr
