"""An unwritable span directory stops the gateway's start with one line naming the directory and the setting (from
`routeiq serve` too: one line on stderr, no traceback, a non-zero exit); a directory that breaks while the
gateway runs costs one warning line and counted failures, not a traceback per export."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from serving.exceptions import GatewayConfigError
from serving.server import running, server_config
from serving.startup import listen, run_until_stopped
from serving.telemetry.directory import SETTING
from tests.attack.conftest import AUTH, CHAT, MASTER_KEY, Upstream, access_section, chat_body, gateway_config

CLI_TIMEOUT = 120.0
DEADLINE = 30.0
"""Seconds the export thread gets to fail (or recover) at its 0.05 s interval."""
FAST = 0.05
FAILING_REQUESTS = 5
FILE_FAILED = 'routeiq_spans_total{destination="file",outcome="failed"}'
FILE_EXPORTED = 'routeiq_spans_total{destination="file",outcome="exported"}'
EXPORTER_LOGGER = "serving.telemetry.file_exporter"


def unwritable(tmp_path: Path, kind: str) -> Path:
    """A span directory nobody can create (under a regular file) or, unless root, one that is read-only."""
    if kind == "under-a-file":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        return blocker / "spans"
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories; the under-a-file case covers root")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked / "spans"


def raw_config(folder: Path, traces: Path) -> dict[str, object]:
    """A gateway config file's content; its deployment is never called (the start fails first)."""
    model = {"model_name": "alpha", "litellm_params": {"model": "openai/alpha", "api_base": "http://127.0.0.1:9/v1"}}
    return {
        "model_list": [model],
        "general_settings": {"master_key": MASTER_KEY},
        "routeiq_settings": {
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "telemetry": {"directory": str(traces)},
            "access": access_section(folder),
            "routing": {"reference": str(folder / "no-router")},
        },
    }


@pytest.mark.parametrize("kind", ["under-a-file", "read-only"])
def test_an_unwritable_span_directory_stops_the_start(upstream: Upstream, tmp_path: Path, kind: str) -> None:
    traces = unwritable(tmp_path, kind)
    config = gateway_config(upstream.url, tmp_path, telemetry={"directory": str(traces)})
    with pytest.raises(GatewayConfigError) as raised:
        run_until_stopped(server_config(config, "127.0.0.1", 0, loop="asyncio"), listen("127.0.0.1", 0))
    message = str(raised.value)
    assert str(traces) in message and SETTING in message and "\n" not in message
    assert upstream.calls == [] or all(call != "/v1/chat/completions" for call in upstream.calls)


def test_routeiq_serve_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    traces = unwritable(tmp_path, "under-a-file")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path, traces)))
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--config", str(path), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode != 0, done.stderr
    assert len(errors) == 1 and str(traces) in errors[0] and SETTING in errors[0], done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def wait_for(client: httpx.Client, name: str, at_least: float) -> None:
    deadline = time.monotonic() + DEADLINE
    while metric(client, name) < at_least:
        assert time.monotonic() < deadline, f"{name} stayed below {at_least}"
        time.sleep(FAST)


def test_a_directory_that_breaks_while_serving_is_one_warning_and_counted_failures(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    traces = tmp_path / "traces"
    # One line per file: every export opens a file, so a broken directory fails each one.
    telemetry = {"directory": str(traces), "export_interval_seconds": FAST, "max_file_bytes": 1}
    config = gateway_config(upstream.url, tmp_path, telemetry=telemetry)
    with caplog.at_level(logging.WARNING), running(config) as url, httpx.Client(base_url=url, headers=AUTH) as client:
        assert client.post(CHAT, json=chat_body()).status_code == 200
        wait_for(client, FILE_EXPORTED, 1)
        shutil.rmtree(traces)
        traces.write_text("the span directory is now a file")
        for sent in range(1, FAILING_REQUESTS + 1):
            assert client.post(CHAT, json=chat_body()).status_code == 200
            wait_for(client, FILE_FAILED, sent)
        traces.unlink()
        assert client.post(CHAT, json=chat_body()).status_code == 200
        wait_for(client, FILE_EXPORTED, 2)
    telemetry_lines = [r for r in caplog.records if r.name.startswith("serving.telemetry")]
    assert [r.getMessage().split(" ")[:3] for r in telemetry_lines] == [
        ["Could", "not", "write"],
        ["Writing", "spans", "under"],
    ]
    assert all(r.exc_info is None and r.exc_text is None for r in telemetry_lines)
    assert "Traceback" not in caplog.text
