"""`routeiq replay-provider`, `ReplaySettings`, `serve` and docs/replay-provider.md give the same defaults."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import typer

from pipelines.cli import app
from serving.replay import ReplaySettings, serve

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "replay-provider.md"
ROW = re.compile(r"^\| `(\w+)` \| `(--[\w-]+)`[^|]* \| ([^|]+) \|", re.MULTILINE)
NOT_A_NUMBER = {"required": None, "no delay": None}
"""Defaults the table writes in words: a required field, and the latency model's (no file)."""


def _cli_defaults() -> dict[str, Any]:
    command = typer.main.get_command(app)
    replay = command.commands["replay-provider"]  # type: ignore[attr-defined]
    return {param.name: param.default for param in replay.params}


def _doc_rows() -> dict[str, tuple[str, str]]:
    return {field: (option, default.strip()) for field, option, default in ROW.findall(DOC.read_text())}


def test_every_setting_is_an_option_with_the_models_default() -> None:
    cli = _cli_defaults()
    for name, field in ReplaySettings.model_fields.items():
        assert name in cli, f"ReplaySettings.{name} has no option of routeiq replay-provider"
        if name == "latency":
            assert cli[name] is None  # no file: the LatencyModel default, no delay
        elif field.is_required():
            assert cli[name] is None, name
        else:
            assert cli[name] == field.default, name


def test_host_and_port_defaults_are_those_of_serve() -> None:
    cli, parameters = _cli_defaults(), inspect.signature(serve).parameters
    assert (cli["host"], cli["port"]) == (parameters["host"].default, parameters["port"].default)


def test_the_settings_table_gives_every_field_its_option_and_default() -> None:
    rows = _doc_rows()
    assert set(rows) == set(ReplaySettings.model_fields)
    for name, field in ReplaySettings.model_fields.items():
        option, written = rows[name]
        assert option == "--" + name.replace("_", "-"), name
        default = NOT_A_NUMBER[written] if written in NOT_A_NUMBER else float(written)
        expected = None if field.is_required() or name == "latency" else field.default
        assert default == expected, f"docs/replay-provider.md gives {name} the default {written}"
