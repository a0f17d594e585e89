"""`routeiq report routers`: each family tuned on train/valid, scored on the test split overall and per task;
the table is written into docs/routers.md between markers, so it is generated, never typed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pyarrow as pa

from features import schema
from pipelines import two_model_report
from pipelines.doc_sections import markers, write_section
from pipelines.outcomes import read_outcomes
from pipelines.study import Progress, run_study
from pipelines.train import Featurized, Splits, split_sets
from routers.dataset import TrainingSet
from routers.metrics import Hull, aiq, best_single_model, gap_closed, single_model_points, task_oracle_frontier
from routers.registry import family_class
from routers.scoring import complete_rows, score

BEGIN, END = markers("results", "routeiq report routers")


@dataclass(frozen=True)
class Scores:
    aiq: float
    aiq_vs_oracle: float
    gap_closed: float | None
    """Share of the Zero-router-to-oracle AIQ gap closed."""
    quality_at_best_cost: float
    cost_share_at_best_quality: float | None
    """Cost needed to match the best single model's quality, as a share of that model's cost."""


def hull_scores(hull: Hull, report: dict[str, Any]) -> Scores:
    """A frontier's scores against the baselines of `report` (same prompts, same AIQ cost range)."""
    best = report["best_single_model"]
    value = aiq(hull, report["max_cost"])
    oracle, zero = report["oracle"]["aiq"], report["zero_router"]["aiq"]
    reach = hull.cost_to_reach(best["quality"])
    return Scores(
        aiq=value,
        aiq_vs_oracle=value / oracle if oracle > 0.0 else 0.0,
        gap_closed=gap_closed(value, zero, oracle),
        quality_at_best_cost=hull.quality_at(best["cost"]) or 0.0,
        cost_share_at_best_quality=None if reach is None else reach / best["cost"],
    )


def scores(report: dict[str, Any]) -> Scores:
    points = report["router"]["hull"]
    hull = Hull(costs=np.array([p["cost"] for p in points]), qualities=np.array([p["quality"] for p in points]))
    return hull_scores(hull, report)


def dataset_oracle(test: TrainingSet, tasks: dict[str, np.ndarray], report: dict[str, Any]) -> dict[str, Any]:
    """The router that knows only the task (at λ = 0 the best single model per task), overall and per task."""
    rows = complete_rows(test)
    label = np.empty(len(test.prompt_ids), dtype=np.intp)
    for index, task_rows_ in enumerate(tasks.values()):
        label[task_rows_] = index
    overall = hull_scores(task_oracle_frontier(test.quality[rows], test.cost[rows], label[rows]), report)
    per_task = {}
    for task, task_rows_ in tasks.items():
        kept = np.intersect1d(task_rows_, rows)
        quality, cost = test.quality[kept], test.cost[kept]
        best = single_model_points(quality, cost)[best_single_model(single_model_points(quality, cost))]
        reach = task_oracle_frontier(quality, cost, np.zeros(kept.size, np.intp)).cost_to_reach(best.quality)
        per_task[task] = None if reach is None else reach / best.cost
    return {"scores": overall, "tasks": per_task}


def evaluate_family(
    family: str, cache: Featurized, tasks: dict[str, np.ndarray], *, trials: int, seed: int, progress: Progress
) -> dict[str, Any]:
    cls = family_class(family)
    featurizer, data = cache.get(cls.features, progress)
    started = time.perf_counter()
    study = run_study(
        cls,
        data.train,
        data.valid,
        trials=trials,
        seed=seed,
        storage="sqlite:///runs/optuna-report.db",
        study_name=f"report-{family}",
        progress=progress,
    )
    router = cls(study.params, seed=seed).fit(data.train, data.valid)
    assert data.test.features is not None
    prediction = router.predict(data.test.features)
    overall = score(prediction, data.test)
    per_task = {
        task: scores(score(type(prediction)(prediction.quality[rows], prediction.cost[rows]), data.test.subset(rows)))
        for task, rows in tasks.items()
    }
    del featurizer
    return {
        "family": family,
        "overall": overall,
        "scores": scores(overall),
        "tasks": per_task,
        "two_model": two_model_report.evaluate_pair(cls, study.params, data, seed),
        "seconds": time.perf_counter() - started,
    }


def task_rows(table: pa.Table, test: TrainingSet) -> dict[str, np.ndarray]:
    task_of = dict(zip(table[schema.PROMPT_ID].to_pylist(), table[schema.TASK].to_pylist(), strict=True))
    tasks = sorted({task_of[p] for p in test.prompt_ids})
    return {t: np.flatnonzero([task_of[p] == t for p in test.prompt_ids]) for t in tasks}


def run(outcomes: Path, families: list[str], trials: int, seed: int, progress: Progress) -> list[dict[str, Any]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Path("runs").mkdir(exist_ok=True)
    table = read_outcomes(outcomes)
    splits: Splits = split_sets(table)
    cache = Featurized(splits)
    tasks = task_rows(table, splits.test)
    results = [evaluate_family(f, cache, tasks, trials=trials, seed=seed, progress=progress) for f in families]
    oracle = dataset_oracle(splits.test, tasks, results[0]["overall"])
    return [{**r, "dataset_oracle": oracle} for r in results]


def _pct(value: float | None) -> str:
    return "not reached" if value is None else f"{round(100 * value):d}%"


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cells(s: Scores) -> list[str]:
    return [
        f"{s.aiq:.4f}",
        _pct(s.gap_closed),
        _pct(s.aiq_vs_oracle),
        f"{s.quality_at_best_cost:.3f}",
        _pct(s.cost_share_at_best_quality),
    ]


def render(results: list[dict[str, Any]], trials: int) -> str:
    """Both tables: every family on all candidates (with the baselines), then the two-model setting."""
    first = results[0]["overall"]
    best = first["best_single_model"]
    tasks = sorted(results[0]["tasks"])
    head = ["family", "AIQ", "gap closed", "AIQ / oracle", "quality at best-model cost", "cost to match best model"]
    head += [f"{t}: cost to match best" for t in tasks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(results, key=lambda r: -r["scores"].aiq):
        cells = [r["family"], *_cells(r["scores"])]
        cells += [_pct(r["tasks"][t].cost_share_at_best_quality) for t in tasks]
        lines.append(_line(cells))
    oracle = results[0]["dataset_oracle"]
    cells = [
        "dataset oracle (best model per task)",
        *_cells(oracle["scores"]),
        *(_pct(oracle["tasks"][t]) for t in tasks),
    ]
    lines.append(_line(cells))
    zero, full = first["zero_router"]["aiq"], first["oracle"]["aiq"]
    blank = [""] * (2 + len(tasks))
    lines.append(_line(["Zero router (single models' hull)", f"{zero:.4f}", "0%", _pct(zero / full), *blank]))
    lines.append(_line(["oracle", f"{full:.4f}", "100%", "100%", *blank]))
    notes = (
        f"\nTest split: {len(first['candidates'])} candidates, {first['summary']['prompts_evaluated']} "
        f"prompts with every outcome known. Best single model: {best['model']} (quality {best['quality']:.3f}, "
        f"${1000 * best['cost']:.2f} per 1k prompts). {trials} Optuna trials per family, objective validation AIQ. "
        "Gap closed = (AIQ − Zero router AIQ) / (oracle AIQ − Zero router AIQ). The dataset oracle knows each "
        "prompt's task and nothing else: the best frontier of giving every prompt of a task the same model (or "
        "mixture), at λ = 0 the best single model per task, chosen on the test outcomes themselves. "
        "Cost shares are of the best single model's cost on the same prompts (per task: that task's best model)."
    )
    table = "\n".join(lines) + "\n" + notes + "\n"
    return table + "\n" + two_model_report.render(results)


def write_into(doc: Path, table: str) -> None:
    if not doc.is_file():
        doc.write_text(f"# Router families\n\n{BEGIN}\n{END}\n")
    write_section(doc, BEGIN, END, table)
