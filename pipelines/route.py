"""`routeiq route`: batch routing of a JSON-lines file of prompts with a registered or local router.

Writes the decisions format of `routeiq eval`; the routing path is the gateway's (routers.routing_model).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from routers.routing_model import RoutingModel

BATCH = 512


class RouteInputError(ValueError):
    """An input line is not `{"id": ..., "prompt": ...}`; the message names the line."""


def read_prompts(path: Path) -> Iterator[tuple[str, str]]:
    if not path.is_file():
        raise RouteInputError(f'input file {path} not found; pass a JSONL file of {{"id", "prompt"}} lines')
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RouteInputError(f"{path.name} line {number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or "id" not in record:
                raise RouteInputError(f'{path.name} line {number}: expected {{"id": ..., "prompt": "..."}}')
            yield str(record["id"]), record["prompt"]


def route_file(
    model: RoutingModel, source: Path, target: Path, candidates: Sequence[str] | None, cost_weight: float
) -> int:
    """Route every prompt of `source` in batches, write decisions to `target`; returns how many."""
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", encoding="utf-8") as out:
        batch: list[tuple[str, str]] = []
        for item in read_prompts(source):
            batch.append(item)
            if len(batch) == BATCH:
                count += _write(model, batch, out, candidates, cost_weight)
                batch = []
        if batch:
            count += _write(model, batch, out, candidates, cost_weight)
    return count


def _write(
    model: RoutingModel,
    batch: list[tuple[str, str]],
    out: TextIO,
    candidates: Sequence[str] | None,
    cost_weight: float,
) -> int:
    decisions = model.decide([p for _, p in batch], candidates, cost_weight, ids=[i for i, _ in batch])
    for decision in decisions:
        out.write(json.dumps(decision.as_record()) + "\n")
    return len(decisions)
