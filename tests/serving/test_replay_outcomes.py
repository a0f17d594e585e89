"""The outcome index (recorded vs estimated usage, first row wins, setup errors) and the stream splitting."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.prompt import prompt_id
from features.schema import OUTCOME_SCHEMA, RESPONSE
from serving.replay.completion import split_text
from serving.replay.exceptions import ModelNotFoundError, PromptNotRecordedError, ReplaySetupError
from serving.replay.outcomes import Record, load_index

PROMPT = "Name a colour of the sky."  # 25 characters: 7 estimated tokens


def _row(model: str, response: str | None, **extra: object) -> dict[str, object]:
    base = {"prompt_id": prompt_id(PROMPT), "prompt": PROMPT, "task": "t", "model": model}
    return {**base, "response": response, "source": "unit", "split": "test", **extra}


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=OUTCOME_SCHEMA), path)
    return path


def test_index_keeps_recorded_usage_and_estimates_the_rest(tmp_path: Path) -> None:
    rows = [
        _row("b", "Blue, on a clear day.", cost_usd=0.5, input_tokens=11, output_tokens=6),
        _row("a", None),
        _row("b", "A later duplicate that must not win."),
    ]
    index = load_index(_write(tmp_path / "o.parquet", rows))
    assert index.models == ("a", "b")
    assert index.lookup("b", prompt_id(PROMPT)) == Record("Blue, on a clear day.", 11, 6, 0.5)
    assert index.lookup("a", prompt_id(PROMPT)) == Record("", 7, 0, None)
    assert index.lookup("a", prompt_id(PROMPT)).usage() == {
        "prompt_tokens": 7,
        "completion_tokens": 0,
        "total_tokens": 7,
    }
    assert index.lookup("b", prompt_id(PROMPT)).usage()["cost"] == 0.5
    with pytest.raises(ModelNotFoundError):
        index.lookup("c", prompt_id(PROMPT))
    with pytest.raises(PromptNotRecordedError):
        index.lookup("a", prompt_id("another prompt"))


def test_unreadable_or_incomplete_outcomes_are_setup_errors(tmp_path: Path) -> None:
    with pytest.raises(ReplaySetupError, match=r"absent\.parquet"):
        load_index(tmp_path / "absent.parquet")
    table = pa.Table.from_pylist([_row("a", "x")], schema=OUTCOME_SCHEMA).drop_columns([RESPONSE])
    pq.write_table(table, tmp_path / "partial.parquet")
    with pytest.raises(ReplaySetupError, match=r"partial\.parquet"):
        load_index(tmp_path / "partial.parquet")


@pytest.mark.parametrize("text", ["", "x", "short answer", "é" * 17, "line one\nline two\n" * 20])
def test_split_text_joins_back_exactly_into_few_pieces(text: str) -> None:
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert len(pieces) <= 8 and all(pieces)
    if len(text) >= 8:
        assert len(pieces) >= 2
