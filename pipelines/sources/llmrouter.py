"""Reader for LLMRouter: `train.json`/`test.json` scores, task names from the query files, prices per model.

Cost is not recorded per call: it is prices × estimated tokens and marked `estimated`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from features.prompt import estimate_tokens
from features.schema import COST_ESTIMATED
from pipelines.sources.record import SourceFormatError, SourceRecord

NAME = "llmrouter"
PER_MILLION = 1_000_000


def read(path: Path) -> Iterator[SourceRecord]:
    """One record per (question, scored model) of `train.json` then `test.json`."""
    prices = _prices(path / "default_llm.json")
    queries = _queries(path)
    for split_hint in ("train", "test"):
        file = path / f"{split_hint}.json"
        for item in _load_json(file):
            question = item.get("question")
            scores = item.get("scores")
            if not isinstance(question, str) or not isinstance(scores, dict):
                raise SourceFormatError(f"{file}: every item needs a 'question' string and a 'scores' object")
            task, answer = queries.get(question, ("unknown", ""))
            for model, score in scores.items():
                yield SourceRecord(
                    prompt=question,
                    task=task,
                    model=model,
                    quality=None if score is None else float(score),
                    cost_usd=_estimated_cost(prices, model, question, answer),
                    cost_source=COST_ESTIMATED if model in prices else None,
                    response=None,
                    split_hint=split_hint,
                )


def _estimated_cost(prices: Mapping[str, tuple[float, float]], model: str, question: str, answer: str) -> float | None:
    """Input tokens estimated from the question, output tokens from the reference answer (at least 1)."""
    if model not in prices:
        return None
    input_price, output_price = prices[model]
    output_tokens = max(estimate_tokens(answer), 1)
    return (estimate_tokens(question) * input_price + output_tokens * output_price) / PER_MILLION


def _prices(file: Path) -> dict[str, tuple[float, float]]:
    table = _load_json(file)
    if not isinstance(table, dict):
        raise SourceFormatError(f"{file}: expected an object of model name → {{input_price, output_price}}")
    return {name: (float(v["input_price"]), float(v["output_price"])) for name, v in table.items()}


def _queries(path: Path) -> dict[str, tuple[str, str]]:
    """Question text → (task name, reference answer), from both query files."""
    found: dict[str, tuple[str, str]] = {}
    for file in sorted(path.glob("default_query_*.jsonl")):
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceFormatError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
                found.setdefault(
                    item["query"], (item.get("task_name") or "unknown", str(item.get("ground_truth") or ""))
                )
    return found


def _load_json(file: Path) -> Any:
    if not file.is_file():
        raise SourceFormatError(f"{file} not found; pass the llmrouter/ directory of the routing data")
    with file.open(encoding="utf-8") as handle:
        return json.load(handle)
