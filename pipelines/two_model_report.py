"""The two-model part of `routeiq report routers`: each family refit on gpt-4 vs Mixtral alone and scored with
RouteLLM's APGR and CPT and the cost saving at 95% of gpt-4's quality, each beside random routing.

Renders the second table of docs/routers.md's results section; the metrics come from routers.metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from pipelines.train import Splits
from routers.base import AnyRouter
from routers.dataset import LoggedEvents, TrainingSet
from routers.metrics import (
    CPT_LEVELS,
    QUALITY_TARGET_FRACTION,
    Hull,
    OperatingPoint,
    cost_saving,
    random_pgr_curve,
)
from routers.scoring import score

PAIR = ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat")
"""(strong, weak): RouteLLM's pair, both recorded by RouterBench."""


@dataclass(frozen=True)
class PairScores:
    apgr: float | None
    cpt: dict[float, float | None]
    """Share of calls to the strong model needed for PGR = level, per level of CPT_LEVELS."""
    cost_saving: float | None
    """At 95% of the strong model's quality, of the strong model's cost."""
    cost_share_at_strong_quality: float | None


def two_candidates(data: TrainingSet, models: tuple[str, ...]) -> TrainingSet:
    """The same prompts with only `models`' columns (full-information data: no logged events to keep)."""
    if data.events.size:
        raise ValueError("the two-model setting is scored on full-information data, not logged traffic")
    columns = [data.models.index(m) for m in models]
    return TrainingSet(
        prompt_ids=data.prompt_ids,
        prompts=data.prompts,
        models=models,
        quality=data.quality[:, columns],
        cost=data.cost[:, columns],
        weight=data.weight[:, columns],
        responses=tuple(tuple(row[j] for j in columns) for row in data.responses) if data.responses else (),
        features=data.features,
        events=LoggedEvents.empty(),
    )


def evaluate_pair(cls: type[AnyRouter], params: BaseModel, data: Splits, seed: int) -> dict[str, Any]:
    """Refit `cls` with `params` on the pair's columns of train/valid; the routing report on the test split."""
    train, valid, test = (two_candidates(part, PAIR) for part in (data.train, data.valid, data.test))
    router = cls(params, seed=seed).fit(train, valid)
    assert test.features is not None
    return score(router.predict(test.features), test)


def pair_scores(report: dict[str, Any]) -> PairScores:
    two, best = report["two_model"], report["best_single_model"]
    hull = _hull(report["router"]["hull"])
    reach = hull.cost_to_reach(best["quality"])
    return PairScores(
        apgr=two["apgr"],
        cpt={level: two[f"cpt_{round(level * 100)}"] for level in CPT_LEVELS},
        cost_saving=report["router"]["cost_saving_at_95pct_quality"],
        cost_share_at_strong_quality=None if reach is None else reach / best["cost"],
    )


def random_scores(report: dict[str, Any]) -> PairScores:
    """Random routing between the two: PGR(s) = s, and the random mix (the pair's Zero router) for the costs."""
    curve = random_pgr_curve()
    best = report["best_single_model"]
    strong = OperatingPoint(cost=best["cost"], quality=best["quality"])
    hull = _hull(report["zero_router"]["hull"])
    return PairScores(
        apgr=curve.apgr(),
        cpt={level: curve.cpt(level) for level in CPT_LEVELS},
        cost_saving=cost_saving(hull, strong, QUALITY_TARGET_FRACTION),
        cost_share_at_strong_quality=1.0,
    )


def _hull(points: list[dict[str, float]]) -> Hull:
    return Hull(costs=np.array([p["cost"] for p in points]), qualities=np.array([p["quality"] for p in points]))


def _pct(value: float | None) -> str:
    return "not reached" if value is None else f"{round(100 * value):d}%"


def _row(name: str, s: PairScores, random: PairScores) -> str:
    delta = None if s.apgr is None or random.apgr is None else s.apgr - random.apgr
    cells = [
        name,
        "n/a" if s.apgr is None else f"{s.apgr:.3f}",
        "n/a" if delta is None else f"{delta:+.3f}",
        *(_pct(s.cpt[level]) for level in CPT_LEVELS),
        _pct(s.cost_saving),
        _pct(s.cost_share_at_strong_quality),
    ]
    return "| " + " | ".join(cells) + " |"


def render(results: list[dict[str, Any]]) -> str:
    """The two-model table: one row per family (best APGR first), then random routing; notes below it."""
    first = results[0]["two_model"]
    two, best = first["two_model"], first["best_single_model"]
    random = random_scores(first)
    head = ["family", "APGR", "APGR − random", *(f"CPT({round(100 * lv)}%)" for lv in CPT_LEVELS)]
    head += [f"cost saving at {round(100 * QUALITY_TARGET_FRACTION)}% of {two['strong']} quality"]
    head += [f"cost to match {two['strong']}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    scored = [(r["family"], pair_scores(r["two_model"])) for r in results]
    for family, s in sorted(scored, key=lambda fs: -(fs[1].apgr if fs[1].apgr is not None else -np.inf)):
        lines.append(_row(family, s, random))
    lines.append(_row("random (at the same cost)", random, random))
    weak = first["single_models"][two["weak"]]
    notes = (
        f"\nTwo-model setting: every family refit on {two['strong']} (strong: quality {two['strong_quality']:.3f}, "
        f"${1000 * best['cost']:.2f} per 1k prompts) and {two['weak']} (weak: quality {two['weak_quality']:.3f}, "
        f"${1000 * weak['cost']:.2f} per 1k prompts) alone, with the hyper-parameters tuned on all candidates; "
        f"{first['summary']['prompts_evaluated']} test prompts. APGR is the mean performance gap recovered at "
        "10%, 20%, …, 100% of calls to the strong model (RouteLLM's 10-point approximation); CPT(x%) is the share "
        "of calls to the strong model needed to recover x% of the gap. Random routing sends a random share s "
        "to the strong model, so its expected PGR(s) is s: APGR 0.550 with the 10-point approximation, CPT(x%) = "
        "x%; its cost saving is that of the random mix of the two models reaching the same quality."
    )
    return "\n".join(lines) + "\n" + notes + "\n"
