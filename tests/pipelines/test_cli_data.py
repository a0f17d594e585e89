"""The `routeiq data` commands as a user runs them: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from features import schema


def _routeiq(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("routeiq", path=str(Path(sys.executable).parent)) or "routeiq"
    return subprocess.run([exe, *args], check=False, capture_output=True, text=True, timeout=300, env=os.environ.copy())


def test_import_then_summary(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "arena.parquet"
    done = _routeiq("data", "import", "routerarena", str(data_dir / "routerarena"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "1618 rows, 809 prompts" in done.stdout
    assert pq.read_schema(out).equals(schema.OUTCOME_SCHEMA, check_metadata=False)
    summary = _routeiq("data", "summary", str(out), "--json")
    assert summary.returncode == 0, summary.stderr
    blocks = json.loads(summary.stdout)
    assert sum(b["prompts"] for b in blocks) == 809
    assert {m["model"] for b in blocks for m in b["models"]} == {
        "claude-3-haiku-20240307",
        "gemini-2.0-flash-001",
    }


def test_user_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    done = _routeiq("data", "import", "nope", str(tmp_path), "--out", str(tmp_path / "x.parquet"))
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown source 'nope'; choose one of routerbench, llmrouter, routerarena"
    missing = _routeiq("data", "summary", str(tmp_path / "missing.parquet"))
    assert missing.returncode == 2
    assert "create it with 'routeiq data import'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_every_command_has_help() -> None:
    for command in (
        ["--help"],
        ["data", "--help"],
        ["data", "import", "--help"],
        ["data", "summary", "--help"],
        ["replay-provider", "--help"],
        ["eval", "--help"],
    ):
        done = _routeiq(*command)
        assert done.returncode == 0, (command, done.stderr)
        assert "Usage:" in done.stdout
