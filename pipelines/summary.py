"""Per task and split: prompts, models, each model's mean quality and cost per 1k prompts, and the oracle.

Unknown quality is left out of a mean, never counted as 0; every mean says over how many prompts it is taken.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from features import schema

PER_THOUSAND = 1000.0


def summarise(table: pa.Table) -> list[dict[str, Any]]:
    """One block per (task, split), tasks sorted, splits in train/valid/test order."""
    frame = table.select([schema.PROMPT_ID, schema.TASK, schema.SPLIT, schema.MODEL, schema.QUALITY, schema.COST_USD])
    df = frame.to_pandas()
    blocks = []
    for (task, split), group in df.groupby([schema.TASK, schema.SPLIT], sort=False):
        blocks.append(_block(str(task), str(split), group))
    order = {s: i for i, s in enumerate(schema.SPLITS)}
    return sorted(blocks, key=lambda b: (b["task"], order.get(b["split"], len(order))))


def _block(task: str, split: str, df: pd.DataFrame) -> dict[str, Any]:
    models = []
    for model, rows in df.groupby(schema.MODEL, sort=True):
        known_q = rows[schema.QUALITY].dropna()
        known_c = rows[schema.COST_USD].dropna()
        models.append(
            {
                "model": str(model),
                "prompts": len(rows),
                "quality_prompts": len(known_q),
                "quality": float(known_q.mean()) if len(known_q) else None,
                "cost_prompts": len(known_c),
                "cost_per_1k": float(known_c.mean() * PER_THOUSAND) if len(known_c) else None,
            }
        )
    return {
        "task": task,
        "split": split,
        "prompts": int(df[schema.PROMPT_ID].nunique()),
        "models": models,
        "oracle": oracle(df),
    }


def oracle(df: pd.DataFrame) -> dict[str, Any]:
    """Per prompt the best known quality, at the cheapest model reaching it (unknown qualities left out)."""
    known = df.dropna(subset=[schema.QUALITY])
    if known.empty:
        return {"prompts": 0, "quality": None, "cost_per_1k": None}
    best = known[schema.QUALITY].eq(known.groupby(schema.PROMPT_ID)[schema.QUALITY].transform("max"))
    winners = known[best].sort_values(schema.COST_USD, na_position="last")
    per_prompt = winners.groupby(schema.PROMPT_ID).first()
    return {
        "prompts": len(per_prompt),
        "quality": float(per_prompt[schema.QUALITY].mean()),
        "cost_per_1k": float(per_prompt[schema.COST_USD].mean() * PER_THOUSAND),
    }


def render(blocks: list[dict[str, Any]]) -> str:
    """Plain-text tables, one per block, best model first."""
    lines: list[str] = []
    for block in blocks:
        lines.append(f"{block['task']} / {block['split']}: {block['prompts']} prompts, {len(block['models'])} models")
        lines.append(_line("model", "quality", "over n", "$/1k prompts"))
        ranked = sorted(block["models"], key=lambda m: (-(m["quality"] or -1.0), m["model"]))
        for m in ranked:
            lines.append(_line(m["model"], _num(m["quality"], 3), m["quality_prompts"], _num(m["cost_per_1k"], 2)))
        o = block["oracle"]
        lines.append(
            _line("oracle (cheapest best model)", _num(o["quality"], 3), o["prompts"], _num(o["cost_per_1k"], 2))
        )
        lines.append("")
    return "\n".join(lines)


def _line(name: str, quality: str, count: object, cost: str) -> str:
    return f"  {name:<36} {quality:>8} {count!s:>7} {cost:>13}"


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
