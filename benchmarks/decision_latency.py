"""Benchmark: time from prompt text to routing decision per family (features + predict + decide), batch 1
and batch 64, p50/p99. `python -m benchmarks.decision_latency`; measures and reports, asserts nothing.

Each measurement stops after `repeats` calls or `seconds`, whichever comes first, so slow (semantic) families
fit the `make bench` budget; the table says how many calls each row timed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from benchmarks.router_fixture import DEFAULT_OUTCOMES
from features.schema import TEST, TRAIN, VALID
from pipelines.demo_steps import say
from pipelines.outcomes import first_prompts, read_outcomes
from pipelines.train import Featurized, split_sets
from routers.registry import EVALUATION_ONLY, FAMILIES, family_class
from routers.routing_model import RoutingModel

BATCH: Final = 64
FAST_FEATURES: Final = frozenset({"fast"})
GOALS: Final = {"fast": (0.3, 1.0), "semantic": (15.0, None)}
"""Features → (p50, p99) goals in ms at batch 1; None: no goal."""


@dataclass(frozen=True)
class Options:
    outcomes: Path
    families: tuple[str, ...] = tuple(f for f in FAMILIES if f not in EVALUATION_ONLY)
    repeats: int = 300
    seconds: float = 4.0
    slow_train_prompts: int = 400
    """Families on semantic or text features train on this many prompts (decision time hardly depends on it)."""


@dataclass(frozen=True)
class Row:
    family: str
    features: str
    train_prompts: int
    calls: int
    p50: float
    p99: float
    batch_calls: int
    batch_p50: float
    batch_p99: float


def measure_calls(model: RoutingModel, prompts: list[str], batch: int, repeats: int, seconds: float) -> list[float]:
    """Milliseconds of `decide` calls over `batch` prompts each (after one warm-up call)."""
    times: list[float] = []
    model.decide(prompts[:batch])  # warm-up: lazy model loads, caches
    stop = time.perf_counter() + seconds
    for i in range(repeats):
        start = i * batch % max(len(prompts) - batch, 1)
        began = time.perf_counter()
        model.decide(prompts[start : start + batch])
        times.append((time.perf_counter() - began) * 1000)
        if began > stop and len(times) >= 5:
            break
    return times


def measure(options: Options) -> list[Row]:
    table = read_outcomes(options.outcomes)
    full = Featurized(split_sets(table))
    # Semantic features cost ~40 ms a prompt: featurize only a slice of each split for the other families.
    count = options.slow_train_prompts
    sliced = Featurized(split_sets(first_prompts(table, {TRAIN: count, VALID: count // 4, TEST: count // 2})))
    rows = []
    for family in options.families:
        cls = family_class(family)
        cache = full if cls.features in FAST_FEATURES else sliced
        featurizer, data = cache.get(cls.features, progress=lambda _: None)
        train = data.train
        say(f"decision latency: {family} ({cls.features} features, {len(train.prompts)} training prompts)")
        model = RoutingModel(featurizer, cls(seed=0).fit(train, data.valid))
        prompts = list(data.test.prompts)
        single = measure_calls(model, prompts, 1, options.repeats, options.seconds)
        batched = measure_calls(model, prompts, BATCH, max(options.repeats // 10, 5), options.seconds)
        (p50, p99), (b50, b99) = np.percentile(single, [50, 99]), np.percentile(batched, [50, 99])
        rows.append(Row(family, cls.features, len(train.prompts), len(single), p50, p99, len(batched), b50, b99))
    return rows


def render(rows: Sequence[Row]) -> str:
    lines = [
        "## Router decision latency",
        "",
        "Time from prompt text to decision in one process: features, prediction and the argmax, in milliseconds "
        f"per call, at batch 1 and batch {BATCH}. Families are fitted with their default parameters on the "
        "RouterBench training split (families on semantic or text features on its first prompts only: their "
        "decision time does not depend on it). Goals at batch 1: fast-feature families p50 ≤ 0.3 ms and "
        "p99 ≤ 1 ms; semantic families p50 ≤ 15 ms.",
        "",
        f"| family | features | calls | batch 1 p50 | batch 1 p99 | batch {BATCH} p50 | batch {BATCH} p99 "
        f"| per prompt at {BATCH} | goal at batch 1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.family} | {r.features} | {r.calls} / {r.batch_calls} | {r.p50:.3f} | {r.p99:.3f} "
            f"| {r.batch_p50:.2f} | {r.batch_p99:.2f} | {r.batch_p50 / BATCH:.3f} | {_verdict(r)} |"
        )
    return "\n".join(lines) + "\n"


def _verdict(row: Row) -> str:
    p50_goal, p99_goal = GOALS.get(row.features, (None, None))
    if p50_goal is None:
        return "—"
    misses = []
    if row.p50 > p50_goal:
        misses.append(f"p50 {row.p50 / p50_goal:.1f}× over")
    if p99_goal is not None and row.p99 > p99_goal:
        misses.append(f"p99 {row.p99 / p99_goal:.1f}× over")
    return "met" if not misses else "missed: " + ", ".join(misses)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--families", default=",".join(Options.families))
    parser.add_argument("--repeats", type=int, default=Options.repeats)
    parser.add_argument("--seconds", type=float, default=Options.seconds)
    args = parser.parse_args(argv)
    families = tuple(f for f in args.families.split(",") if f)
    options = Options(args.outcomes, families=families, repeats=args.repeats, seconds=args.seconds)
    print(render(measure(options)))  # noqa: T201


if __name__ == "__main__":
    main()
