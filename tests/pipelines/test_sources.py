"""The importers on the real files: quirks handled, one prompt one split, costs marked by origin."""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from features import schema
from features.prompt import estimate_tokens, prompt_id
from pipelines.outcomes import ImportStats, import_source
from pipelines.sources import SourceFormatError

Imported = tuple[pa.Table, ImportStats]


def _splits_per_prompt(table: pa.Table) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for pid, split in zip(table[schema.PROMPT_ID].to_pylist(), table[schema.SPLIT].to_pylist(), strict=True):
        found.setdefault(pid, set()).add(split)
    return found


@pytest.mark.parametrize("name", ["routerbench", "llmrouter", "routerarena"])
def test_no_prompt_is_in_two_splits_and_rows_are_unique(name: str, request: pytest.FixtureRequest) -> None:
    table, stats = request.getfixturevalue(name)
    assert all(len(s) == 1 for s in _splits_per_prompt(table).values())
    keys = list(zip(table[schema.PROMPT_ID].to_pylist(), table[schema.MODEL].to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == stats.rows
    assert set(table[schema.SPLIT].to_pylist()) == set(schema.SPLITS)


def _raw_rows(data_dir: Path, file: str) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with (data_dir / "routerbench" / file).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_routerbench_empty_cells_stay_null(routerbench: Imported, data_dir: Path) -> None:
    table, _ = routerbench
    raw = _raw_rows(data_dir, "arc_challenge_test.csv")
    model = "gpt-4-1106-preview"
    empty = {prompt_id("\n".join(ast.literal_eval(r["prompt"]))) for r in raw if not r[model].strip()}
    assert len(empty) == 6  # the data README: 6 empty gpt-4 cells in the ARC test file
    rows = table.filter(pa.compute.equal(table[schema.MODEL], model)).to_pylist()
    by_id = {r[schema.PROMPT_ID]: r for r in rows}
    assert all(by_id[pid][schema.QUALITY] is None for pid in empty)
    assert all(by_id[pid][schema.COST_SOURCE] == schema.COST_RECORDED for pid in empty)


def test_routerbench_list_literal_prompts_are_joined(routerbench: Imported, data_dir: Path) -> None:
    table, _ = routerbench
    raw = next(r for r in _raw_rows(data_dir, "arc_challenge_train.csv") if len(ast.literal_eval(r["prompt"])) > 1)
    parts = ast.literal_eval(raw["prompt"])
    prompts = set(table[schema.PROMPT].to_pylist())
    assert "\n".join(parts).strip() in prompts
    assert not any(p.startswith("['") for p in prompts)


def test_routerbench_prompts_in_train_and_test_files_get_the_training_side(
    routerbench: Imported, data_dir: Path
) -> None:
    table, stats = routerbench
    train = {"\n".join(ast.literal_eval(r["prompt"])) for r in _raw_rows(data_dir, "mbpp_train.csv")}
    test = {"\n".join(ast.literal_eval(r["prompt"])) for r in _raw_rows(data_dir, "mbpp_test.csv")}
    shared = {prompt_id(p) for p in train & test}
    assert len(shared) == 2  # the data README names 2 MBPP prompts in both files
    splits = _splits_per_prompt(table)
    assert all(splits[pid] <= {schema.TRAIN, schema.VALID} for pid in shared)
    assert stats.prompts_in_several_files == 2
    assert stats.duplicates == 2 * 11  # 11 models × the 2 prompts read twice


def test_routerbench_costs_are_recorded_per_call(routerbench: Imported, data_dir: Path) -> None:
    table, _ = routerbench
    raw = _raw_rows(data_dir, "winograde_test.csv")[0]
    pid = prompt_id("\n".join(ast.literal_eval(raw["prompt"])))
    row = next(r for r in table.to_pylist() if r[schema.PROMPT_ID] == pid and r[schema.MODEL] == "claude-v2")
    assert row[schema.COST_USD] == float(raw["claude-v2|total_cost"])
    assert row[schema.RESPONSE] == "\n".join(ast.literal_eval(raw["claude-v2|model_response"]))
    assert row[schema.SPLIT] == schema.TEST
    assert row[schema.TASK] == raw["eval_name"]


def test_llmrouter_costs_are_estimated_from_prices_and_tokens(llmrouter: Imported, data_dir: Path) -> None:
    table, _ = llmrouter
    prices = json.loads((data_dir / "llmrouter" / "default_llm.json").read_text())
    item = json.loads((data_dir / "llmrouter" / "test.json").read_text())[3]
    lines = (data_dir / "llmrouter" / "default_query_test.jsonl").read_text().splitlines()
    query = next(json.loads(line) for line in lines if json.loads(line)["query"] == item["question"])
    model = "qwen2.5-7b-instruct"
    row = next(
        r for r in table.to_pylist() if r[schema.PROMPT_ID] == prompt_id(item["question"]) and r[schema.MODEL] == model
    )
    # cost = (input tokens × input price + output tokens × output price) / 1e6, tokens = ceil(chars / 4)
    expected = (
        estimate_tokens(item["question"]) * prices[model]["input_price"]
        + max(estimate_tokens(str(query["ground_truth"])), 1) * prices[model]["output_price"]
    ) / 1e6
    assert row[schema.COST_USD] == pytest.approx(expected)
    assert row[schema.COST_SOURCE] == schema.COST_ESTIMATED
    assert row[schema.QUALITY] == item["scores"][model]
    assert row[schema.TASK] == query["task_name"]


def test_llmrouter_overlapping_prompts_get_one_split(llmrouter: Imported, data_dir: Path) -> None:
    table, stats = llmrouter
    train = {x["question"] for x in json.loads((data_dir / "llmrouter" / "train.json").read_text())}
    test = {x["question"] for x in json.loads((data_dir / "llmrouter" / "test.json").read_text())}
    assert stats.prompts_in_several_files == len(train & test) > 100
    assert stats.prompts == len(train | test)
    tasks = Counter(table[schema.TASK].to_pylist())
    assert "unknown" not in tasks
    assert {"mmlu", "gsm8k", "mbpp"} <= set(tasks)


def test_routerarena_tokens_recorded_and_cost_priced(routerarena: Imported, data_dir: Path) -> None:
    table, stats = routerarena
    text = (data_dir / "routerarena" / "claude-3-haiku-20240307.jsonl").read_text()
    line = json.loads(text.splitlines()[0])
    row = next(
        r
        for r in table.to_pylist()
        if r[schema.PROMPT_ID] == prompt_id(line["question"]) and r[schema.MODEL] == "claude-3-haiku-20240307"
    )
    usage = line["token_usage"]
    assert (row[schema.INPUT_TOKENS], row[schema.OUTPUT_TOKENS]) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    # claude-3-haiku: $0.25 / $1.25 per million input / output tokens in cost.json
    assert row[schema.COST_USD] == pytest.approx((usage["input_tokens"] * 0.25 + usage["output_tokens"] * 1.25) / 1e6)
    assert row[schema.COST_USD] == pytest.approx(line["evaluation_result"]["inference_cost"])
    assert row[schema.COST_SOURCE] == schema.COST_PRICED
    assert row[schema.RESPONSE] == line["generated_answer"]
    assert row[schema.TASK] == line["global_index"].rsplit("_", 1)[0]
    assert stats.prompts == 809 and stats.rows == 2 * 809
    # No published split: about 20% test and 10% valid by seeded prompt-group draw.
    assert 0.15 < stats.per_split[schema.TEST] / stats.prompts < 0.25
    assert 0.05 < stats.per_split[schema.VALID] / stats.prompts < 0.15


def test_unknown_source_and_wrong_directory_say_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="choose one of routerbench, llmrouter, routerarena"):
        import_source("nope", tmp_path)
    with pytest.raises(SourceFormatError, match="pass the routerbench/ dir"):
        import_source("routerbench", tmp_path)
