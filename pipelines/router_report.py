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
from pipelines.doc_sections import markers, write_section
from pipelines.outcomes import read_outcomes
from pipelines.study import Progress, run_study
from pipelines.train import Featurized, Splits, split_sets
from routers.dataset import TrainingSet
from routers.metrics import upper_hull
from routers.registry import family_class
from routers.scoring import score

BEGIN, END = markers("results", "routeiq report routers")


@dataclass(frozen=True)
class Scores:
    aiq: float
    aiq_vs_oracle: float
    quality_at_best_cost: float
    cost_share_at_best_quality: float | None
    """Cost needed to match the best single model's quality, as a share of that model's cost."""


def scores(report: dict[str, Any]) -> Scores:
    router, best = report["router"], report["best_single_model"]
    hull = upper_hull(np.array([p["cost"] for p in router["hull"]]), np.array([p["quality"] for p in router["hull"]]))
    reach = hull.cost_to_reach(best["quality"])
    return Scores(
        aiq=router["aiq"],
        aiq_vs_oracle=router["aiq_vs_oracle"] or 0.0,
        quality_at_best_cost=router["quality_at_best_model_cost"] or 0.0,
        cost_share_at_best_quality=None if reach is None else reach / best["cost"],
    )


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
    return [evaluate_family(f, cache, tasks, trials=trials, seed=seed, progress=progress) for f in families]


def _pct(value: float | None) -> str:
    return "not reached" if value is None else f"{100 * value:.0f}%"


def render(results: list[dict[str, Any]], trials: int) -> str:
    first = results[0]["overall"]
    best = first["best_single_model"]
    tasks = sorted(results[0]["tasks"])
    head = ["family", "AIQ", "AIQ / oracle", "quality at best-model cost", "cost to match best model"]
    head += [f"{t}: cost to match best" for t in tasks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(results, key=lambda r: -r["scores"].aiq):
        s: Scores = r["scores"]
        cells = [
            r["family"],
            f"{s.aiq:.4f}",
            _pct(s.aiq_vs_oracle),
            f"{s.quality_at_best_cost:.3f}",
            _pct(s.cost_share_at_best_quality),
        ]
        cells += [_pct(r["tasks"][t].cost_share_at_best_quality) for t in tasks]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"| Zero router (single models' hull) | {first['zero_router']['aiq']:.4f} | | | | " + "| " * len(tasks)
    )
    lines.append(f"| oracle | {first['oracle']['aiq']:.4f} | 100% | | | " + "| " * len(tasks))
    notes = (
        f"\nTest split: {len(first['candidates'])} candidates, {first['summary']['prompts_evaluated']} "
        f"prompts with every outcome known. Best single model: {best['model']} (quality {best['quality']:.3f}, "
        f"${1000 * best['cost']:.2f} per 1k prompts). {trials} Optuna trials per family, objective validation AIQ. "
        "Cost shares are of the best single model's cost on the same prompts (per task: that task's best model)."
    )
    return "\n".join(lines) + "\n" + notes + "\n"


def write_into(doc: Path, table: str) -> None:
    if not doc.is_file():
        doc.write_text(f"# Router families\n\n{BEGIN}\n{END}\n")
    write_section(doc, BEGIN, END, table)
