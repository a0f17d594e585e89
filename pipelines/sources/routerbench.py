"""Reader for the RouterBench zero-shot subset: `<task>_{train,test}.csv`, 11 models, recorded cost per call.

Yields source records only; prompt ids and splits are assigned by `pipelines.outcomes`.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

from features.schema import COST_RECORDED
from pipelines.sources.record import SourceFormatError, SourceRecord, join_text_list, optional_float

NAME = "routerbench"
RESPONSE_SUFFIX = "|model_response"
COST_SUFFIX = "|total_cost"
NON_MODEL_COLUMNS = frozenset({"", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"})


def read(path: Path) -> Iterator[SourceRecord]:
    """Every (prompt, model) cell of every `*_train.csv` / `*_test.csv` file in `path`."""
    files = sorted(path.glob("*_train.csv")) + sorted(path.glob("*_test.csv"))
    if not files:
        raise SourceFormatError(f"no <task>_train.csv or <task>_test.csv files in {path}; pass the routerbench/ dir")
    csv.field_size_limit(sys.maxsize)
    for file in files:
        split_hint = "train" if file.stem.endswith("_train") else "test"
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            models = _models(list(reader.fieldnames or []), file)
            for row in reader:
                yield from _row_records(row, models, split_hint)


def _models(columns: list[str], file: Path) -> list[str]:
    models = [c for c in columns if "|" not in c and c not in NON_MODEL_COLUMNS]
    missing = [m for m in models if f"{m}{RESPONSE_SUFFIX}" not in columns or f"{m}{COST_SUFFIX}" not in columns]
    if not models or missing or "prompt" not in columns:
        raise SourceFormatError(f"{file}: expected prompt, <model>, <model>|model_response, <model>|total_cost columns")
    return models


def _row_records(row: dict[str, str], models: list[str], split_hint: str) -> Iterator[SourceRecord]:
    prompt = join_text_list(row["prompt"])
    task = row.get("eval_name") or "unknown"
    for model in models:
        response = row.get(f"{model}{RESPONSE_SUFFIX}") or ""
        yield SourceRecord(
            prompt=prompt,
            task=task,
            model=model,
            quality=optional_float(row.get(model)),
            cost_usd=(cost := optional_float(row.get(f"{model}{COST_SUFFIX}"))),
            cost_source=COST_RECORDED if cost is not None else None,
            response=join_text_list(response) if response.strip() else None,
            split_hint=split_hint,
        )
