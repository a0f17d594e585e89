"""Every way a user can get a `routeiq` command wrong ends in one `error: ...` line that says what to change.

Each case runs the real entry point (`python -m pipelines.cli`) in a subprocess from the repository root;
one runs `pipelines.cli.main` in-process, as the console script does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml  # type: ignore[import-untyped]

from features.prompt import prompt_id
from features.schema import OUTCOME_SCHEMA, conform
from pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
USER_ERROR_EXIT = 2
TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Files:
    """What the cases point at: good and broken inputs, a taken port, an empty MLflow store."""

    root: Path
    outcomes: Path
    not_parquet: Path
    bad_yaml: Path
    gateway: Path
    bad_jsonl: Path
    busy_port: int


def _write_outcomes(path: Path) -> Path:
    prompt = "What is 2 + 2?"
    rows = [
        {"prompt_id": prompt_id(prompt), "prompt": prompt, "task": "t", "model": model, "quality": 1.0}
        | {"cost_usd": 0.001, "response": "4", "source": "unit", "split": "test"}
        for model in ("alpha", "beta")
    ]
    pq.write_table(conform(pa.Table.from_pylist(rows, schema=OUTCOME_SCHEMA)), path)
    return path


def _write_gateway_config(root: Path) -> Path:
    deployment = {"model": "openai/alpha", "api_base": "http://127.0.0.1:9/v1", "api_key": "unused"}
    config = {
        "model_list": [{"model_name": "alpha", "litellm_params": deployment}],
        "routeiq_settings": {
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "telemetry": {"directory": str(root / "traces")},
        },
    }
    path = root / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    root = tmp_path_factory.mktemp("cli-errors")
    (root / "not.parquet").write_text("prompt,model\n")
    (root / "bad.yaml").write_text("default: [ttft_ms\n")
    (root / "bad.jsonl").write_text('{"id": "1", "prompt": \n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield Files(
            root=root,
            outcomes=_write_outcomes(root / "outcomes.parquet"),
            not_parquet=root / "not.parquet",
            bad_yaml=root / "bad.yaml",
            gateway=_write_gateway_config(root),
            bad_jsonl=root / "bad.jsonl",
            busy_port=busy.getsockname()[1],
        )


def _cli(files: Files, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{files.root / 'mlflow.db'}"}
    command = [sys.executable, "-m", "pipelines.cli", *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


Args = Callable[[Files], list[str]]


def _replay(*args: str) -> Args:
    return lambda f: ["replay-provider", "--outcomes", str(f.outcomes), *args]


def _serve(*args: str) -> Args:
    return lambda f: ["serve", "--config", str(f.gateway), *args]


# (arguments, a piece of the one stderr line: the thing to change). The first four are issue #13's.
CASES: list[tuple[str, Args, str]] = [
    ("unknown-command", lambda f: ["serv"], "Did you mean 'serve'?"),
    ("missing-option", lambda f: ["data", "import", "routerarena", str(f.root)], "Missing option '--out'"),
    ("bad-integer", lambda f: ["promote", "--version", "abc"], "Invalid value for '--version'"),
    ("outcomes-not-parquet", lambda f: ["replay-provider", "--outcomes", str(f.not_parquet)], "parquet"),
    ("unknown-option", lambda f: ["eval", "--outcome", "x"], "No such option: --outcome"),
    ("missing-argument", lambda f: ["data", "summary"], "Missing argument 'file'"),
    ("missing-config", lambda f: ["serve"], "Missing option '--config'"),
    ("bad-float", _replay("--stall-seconds", "soon"), "'--stall-seconds'"),
    ("below-minimum", lambda f: ["replay", "--gateway", "http://127.0.0.1:9", "--concurrency", "0"], "'--concurrency'"),
    ("rate-above-one", _replay("--error-rate", "2"), "'--error-rate'"),
    ("latency-not-yaml", lambda f: _replay("--latency", str(f.bad_yaml))(f), "latency file"),
    ("replay-port-out-of-range", _replay("--port", "99999"), "1..65535"),
    ("serve-port-out-of-range", _serve("--port", "99999"), "1..65535"),
    ("replay-port-in-use", lambda f: _replay("--port", str(f.busy_port))(f), "already in use"),
    ("serve-port-in-use", lambda f: _serve("--port", str(f.busy_port))(f), "already in use"),
    ("address-not-here", _replay("--host", "192.0.2.1"), "not an address of this machine"),
    # Paths that already ended in one line; kept so the class stays covered.
    ("gateway-config-not-yaml", lambda f: ["serve", "--config", str(f.bad_yaml)], "is not valid YAML"),
    (
        "decisions-not-jsonl",
        lambda f: ["eval", "--outcomes", str(f.outcomes), "--decisions", str(f.bad_jsonl)],
        "bad.jsonl line 1: not valid JSON",
    ),
]


def _assert_one_error_line(done: subprocess.CompletedProcess[str], names: str) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert names in lines[0], lines[0]
    assert done.returncode == USER_ERROR_EXIT, done.stderr


@pytest.mark.parametrize(("args", "names"), [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_user_error_is_one_line_naming_what_to_change(files: Files, args: Args, names: str) -> None:
    _assert_one_error_line(_cli(files, *args(files)), names)


def test_no_registered_model_is_one_line(files: Files) -> None:
    # MLflow logs its table creation when a store is new; a user's store exists already.
    assert _cli(files, "models", "list").returncode == 0
    output = str(files.root / "out.jsonl")
    done = _cli(
        files, "route", "--model-uri", "models:/routeiq-router/1", "--input", str(files.bad_jsonl), "--output", output
    )
    _assert_one_error_line(done, "'routeiq models list' shows what is registered")


def test_group_without_a_command_prints_its_help_without_a_traceback(files: Files) -> None:
    done = _cli(files, "data")
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert "Usage:" in done.stdout and "summary" in done.stdout
    assert done.returncode == USER_ERROR_EXIT


def test_console_script_entry_point_reports_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer installs its own hook; keep pytest's
    monkeypatch.setattr(sys, "argv", ["routeiq", "promote", "--version", "abc"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == USER_ERROR_EXIT
    assert capsys.readouterr().err.splitlines() == [
        "error: Invalid value for '--version': Input should be a valid integer, unable to parse string as an "
        "integer (see 'routeiq promote --help')"
    ]
