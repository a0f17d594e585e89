"""The `eval` glue: join decisions to true outcomes, drop incomplete prompts, score, write report and figure.

Metrics live in routers.metrics; only `run_eval` and `load_decisions` touch files; nothing here prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.schema import COST_USD, MODEL, PROMPT_ID, QUALITY
from pipelines.plot import plot_curves
from routers.metrics import Report, RoutingData, routing_report
from routers.routing_model import DECISION_COST, DECISION_ID, DECISION_MODEL, DECISION_QUALITY

REPORT_FILE = "report.json"
CURVES_FILE = "curves.png"
REPORT_SCHEMA_VERSION = 1
OUTCOME_COLUMNS = (PROMPT_ID, MODEL, QUALITY, COST_USD)
MISSING_OUTCOME = "missing_outcome"
MISSING_QUALITY = "missing_quality"
MISSING_COST = "missing_cost"
DROP_REASONS = (MISSING_OUTCOME, MISSING_QUALITY, MISSING_COST)
"""A dropped prompt is counted once, under the first of these that applies to any of its candidates."""


class EvaluationInputError(ValueError):
    """The outcome table or the decisions cannot be evaluated; the one-line message says what to change."""


@dataclass(frozen=True)
class Decision:
    """One routing decision: the chosen model and the predicted quality and cost of every candidate."""

    prompt_id: str
    model: str
    quality: dict[str, float]
    cost: dict[str, float]
    where: str
    """Where the record came from ("decisions.jsonl line 3", "decision 3"), to start error messages."""


def parse_decision(record: object, where: str) -> Decision:
    """Validate one decision record; `where` (e.g. "decisions.jsonl line 3") starts any error message."""
    if not isinstance(record, Mapping):
        raise EvaluationInputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    prompt_id, model = record.get(DECISION_ID), record.get(DECISION_MODEL)
    if not isinstance(prompt_id, str) or not isinstance(model, str):
        raise EvaluationInputError(f"{where}: {DECISION_ID!r} and {DECISION_MODEL!r} must be strings")
    quality = _scores(record.get(DECISION_QUALITY), DECISION_QUALITY, where)
    cost = _scores(record.get(DECISION_COST), DECISION_COST, where)
    if set(cost) != set(quality):
        raise EvaluationInputError(
            f"{where}: {DECISION_COST!r} names {sorted(cost)} but {DECISION_QUALITY!r} names "
            f"{sorted(quality)}; give both for the same candidates"
        )
    if model not in quality:
        raise EvaluationInputError(f"{where}: chosen model {model!r} is not among the candidates {sorted(quality)}")
    return Decision(prompt_id=prompt_id, model=model, quality=quality, cost=cost, where=where)


def _scores(value: object, key: str, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise EvaluationInputError(f"{where}: {key!r} must be a non-empty object mapping model → number")
    scores: dict[str, float] = {}
    for model, score in value.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise EvaluationInputError(f"{where}: {key}[{model!r}] must be a finite number, got {score!r}")
        scores[str(model)] = float(score)
    return scores


def parse_decisions(records: Iterable[object]) -> list[Decision]:
    """Validate decision records given in memory; errors name the record by its 1-based position."""
    return [parse_decision(record, f"decision {i}") for i, record in enumerate(records, start=1)]


def load_decisions(path: Path) -> list[Decision]:
    """Read a decisions JSON-lines file (blank lines skipped); errors name the file and line."""
    if not path.is_file():
        raise EvaluationInputError(f"decisions file {path} does not exist; pass the JSONL the router wrote")
    decisions: list[Decision] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvaluationInputError(f"{where}: not valid JSON ({exc.msg}); write one object per line") from exc
            decisions.append(parse_decision(record, where))
    return decisions


def read_outcomes(path: Path) -> pa.Table:
    """Read only the columns evaluation needs from an outcome-table parquet file."""
    if not path.is_file():
        raise EvaluationInputError(f"outcome table {path} does not exist; pass the parquet file of true outcomes")
    try:
        names = pq.read_schema(path).names
        _require_columns(names)
        return pq.read_table(path, columns=list(OUTCOME_COLUMNS))
    except (pa.ArrowException, OSError) as exc:
        raise EvaluationInputError(f"cannot read outcome table {path} as parquet: {_first_line(exc)}") from exc


def _require_columns(names: Sequence[str]) -> None:
    missing = [name for name in OUTCOME_COLUMNS if name not in names]
    if missing:
        raise EvaluationInputError(f"outcome table lacks columns {missing}; it needs {list(OUTCOME_COLUMNS)}")


def evaluate(outcomes: Any, decisions: Iterable[object]) -> Report:
    """The evaluation report for decision records (dicts) against an outcome table (pyarrow or pandas)."""
    return evaluate_decisions(outcomes, parse_decisions(decisions))


def evaluate_decisions(outcomes: Any, decisions: Sequence[Decision]) -> Report:
    """The evaluation report for already-validated decisions; see docs/metrics.md for every key."""
    table = _as_table(outcomes)
    candidates = _candidates(decisions)
    lookup = _outcome_lookup(table)
    _check_known(decisions, candidates, lookup)
    data, dropped = _align(decisions, candidates, lookup)
    if np.any(data.cost < 0.0):
        raise EvaluationInputError(f"outcome table has negative {COST_USD}; costs must be >= 0 USD")
    metrics = routing_report(data)
    summary = {**metrics.pop("summary"), "prompts_dropped": sum(dropped.values())}
    prompts = {
        "decisions": len(decisions),
        "evaluated": int(data.chosen.size),
        "dropped": sum(dropped.values()),
        "dropped_by_reason": dropped,
    }
    return {"schema_version": REPORT_SCHEMA_VERSION, "summary": summary, "prompts": prompts, **metrics}


def _as_table(outcomes: Any) -> pa.Table:
    """The needed columns as a pyarrow Table; a pandas DataFrame is converted (only those columns)."""
    if isinstance(outcomes, pa.Table):
        _require_columns(outcomes.column_names)
        return outcomes.select(list(OUTCOME_COLUMNS))
    columns = getattr(outcomes, "columns", None)
    if columns is None:
        raise EvaluationInputError(
            f"outcomes must be a pyarrow Table or a pandas DataFrame, got {type(outcomes).__name__}"
        )
    _require_columns([str(column) for column in columns])
    try:
        return pa.Table.from_pandas(outcomes[list(OUTCOME_COLUMNS)], preserve_index=False)
    except (TypeError, pa.ArrowException) as exc:
        raise EvaluationInputError(f"outcome table has a column of the wrong type: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _candidates(decisions: Sequence[Decision]) -> tuple[str, ...]:
    if not decisions:
        raise EvaluationInputError("there are no decisions to evaluate; route some prompts first")
    first = sorted(decisions[0].quality)
    seen: set[str] = set()
    for decision in decisions:
        if sorted(decision.quality) != first:
            raise EvaluationInputError(
                f"{decision.where}: scores candidates {sorted(decision.quality)} but {decisions[0].where} "
                f"scores {first}; every decision must score the same candidates"
            )
        if decision.prompt_id in seen:
            raise EvaluationInputError(
                f"{decision.where}: id {decision.prompt_id!r} is decided twice; keep one decision per prompt"
            )
        seen.add(decision.prompt_id)
    return tuple(first)


def _outcome_lookup(table: pa.Table) -> dict[tuple[str, str], tuple[float, float]]:
    """(prompt_id, model) → (quality, cost), NaN when unknown; repeated observations are averaged."""
    grouped = table.group_by([PROMPT_ID, MODEL]).aggregate([(QUALITY, "mean"), (COST_USD, "mean")])
    ids = grouped.column(PROMPT_ID).to_pylist()
    models = grouped.column(MODEL).to_pylist()
    quality = _floats(grouped.column(f"{QUALITY}_mean"))
    cost = _floats(grouped.column(f"{COST_USD}_mean"))
    return {(p, m): (float(q), float(c)) for p, m, q, c in zip(ids, models, quality, cost, strict=True)}


def _floats(column: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.float64]]:
    values = [math.nan if v is None else float(v) for v in column.to_pylist()]
    return np.asarray(values, dtype=np.float64)


def _check_known(
    decisions: Sequence[Decision], candidates: tuple[str, ...], lookup: Mapping[tuple[str, str], object]
) -> None:
    known_ids = {prompt_id for prompt_id, _ in lookup}
    known_models = {model for _, model in lookup}
    unknown_models = sorted(set(candidates) - known_models)
    if unknown_models:
        raise EvaluationInputError(
            f"decisions name models {unknown_models} that the outcome table never saw; it has {sorted(known_models)}"
        )
    for decision in decisions:
        if decision.prompt_id not in known_ids:
            raise EvaluationInputError(
                f"{decision.where}: id {decision.prompt_id!r} is not a prompt_id of the outcome table; "
                "evaluate decisions against the table they were routed from"
            )


def _align(
    decisions: Sequence[Decision],
    candidates: tuple[str, ...],
    lookup: Mapping[tuple[str, str], tuple[float, float]],
) -> tuple[RoutingData, dict[str, int]]:
    """Matrices over the prompts whose every candidate has a known quality and cost, and the drop counts."""
    dropped = dict.fromkeys(DROP_REASONS, 0)
    kept: list[Decision] = []
    true_rows: list[list[tuple[float, float]]] = []
    for decision in decisions:
        row = [lookup.get((decision.prompt_id, model), (math.nan, math.nan)) for model in candidates]
        reason = _drop_reason(decision.prompt_id, candidates, row, lookup)
        if reason is None:
            kept.append(decision)
            true_rows.append(row)
        else:
            dropped[reason] += 1
    if not kept:
        raise EvaluationInputError(
            f"no decided prompt has a known quality and cost for every candidate (dropped: {dropped}); "
            "evaluate on full-information outcomes"
        )
    outcome = np.asarray(true_rows, dtype=np.float64)
    data = RoutingData(
        models=candidates,
        quality=outcome[:, :, 0],
        cost=outcome[:, :, 1],
        pred_quality=np.asarray([[d.quality[m] for m in candidates] for d in kept], dtype=np.float64),
        pred_cost=np.asarray([[d.cost[m] for m in candidates] for d in kept], dtype=np.float64),
        chosen=np.asarray([candidates.index(d.model) for d in kept], dtype=np.intp),
    )
    return data, dropped


def _drop_reason(
    prompt_id: str,
    candidates: tuple[str, ...],
    row: Sequence[tuple[float, float]],
    lookup: Mapping[tuple[str, str], object],
) -> str | None:
    if any((prompt_id, model) not in lookup for model in candidates):
        return MISSING_OUTCOME
    if any(math.isnan(quality) for quality, _ in row):
        return MISSING_QUALITY
    if any(math.isnan(cost) for _, cost in row):
        return MISSING_COST
    return None


def run_eval(outcomes_path: Path, decisions_path: Path, out_dir: Path) -> dict[str, Any]:
    """Read the outcome parquet and decisions JSONL, write report.json and curves.png, return the report."""
    table = read_outcomes(outcomes_path)
    decisions = load_decisions(decisions_path)
    report = evaluate_decisions(table, decisions)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, allow_nan=False)
    (out_dir / REPORT_FILE).write_text(text + "\n", encoding="utf-8")
    plot_curves(report, out_dir / CURVES_FILE)
    return report
