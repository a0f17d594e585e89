"""Reader for RouterArena: one `<model>.jsonl` per model with per-call tokens, prices in `cost.json`.

Cost is the recorded token counts × the published prices, marked `priced`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from features.schema import COST_PRICED
from pipelines.sources.record import SourceFormatError, SourceRecord, literal

NAME = "routerarena"
PER_MILLION = 1_000_000


def read(path: Path) -> Iterator[SourceRecord]:
    """One record per line of every model file (every `*.jsonl` in `path`)."""
    prices = _prices(path / "cost.json")
    files = sorted(path.glob("*.jsonl"))
    if not files:
        raise SourceFormatError(f"no <model>.jsonl files in {path}; pass the routerarena/ directory")
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield _record(_parse(line, file, number), prices)


def _parse(line: str, file: Path, number: int) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceFormatError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
    if not isinstance(item, dict) or "question" not in item or "llm_selected" not in item:
        raise SourceFormatError(f"{file}:{number}: expected an object with 'question' and 'llm_selected'")
    return item


def _record(item: dict[str, Any], prices: Mapping[str, tuple[float, float]]) -> SourceRecord:
    model = str(item["llm_selected"])
    usage = item.get("token_usage") or {}
    if isinstance(usage, str):
        usage = literal(usage)
    input_tokens, output_tokens = usage.get("input_tokens"), usage.get("output_tokens")
    evaluation = item.get("evaluation_result") or {}
    if isinstance(evaluation, str):
        evaluation = literal(evaluation)
    score = evaluation.get("score")
    cost = None
    if model in prices and input_tokens is not None and output_tokens is not None:
        cost = (input_tokens * prices[model][0] + output_tokens * prices[model][1]) / PER_MILLION
    return SourceRecord(
        prompt=str(item["question"]),
        task=str(item.get("global_index", "unknown")).rsplit("_", 1)[0],
        model=model,
        # One METEOR score in the file is slightly negative (its fragmentation penalty): clip to [0, 1].
        quality=None if score is None else min(max(float(score), 0.0), 1.0),
        cost_usd=cost,
        cost_source=COST_PRICED if cost is not None else None,
        response=item.get("generated_answer"),
        input_tokens=None if input_tokens is None else int(input_tokens),
        output_tokens=None if output_tokens is None else int(output_tokens),
    )


def _prices(file: Path) -> dict[str, tuple[float, float]]:
    if not file.is_file():
        raise SourceFormatError(f"{file} not found; pass the routerarena/ directory of the routing data")
    with file.open(encoding="utf-8") as handle:
        table = json.load(handle)
    return {
        name: (float(v["input_token_price_per_million"]), float(v["output_token_price_per_million"]))
        for name, v in table.items()
    }
