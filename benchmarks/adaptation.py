"""Benchmark: how fast the loop makes a router good on traffic unlike its bootstrap data, from logged bandit
feedback alone.

For each RouterBench task in turn: a kNN router is bootstrapped on the other tasks (full information) and
promoted; the left-out task's prompts then go through the real gateway (replay provider upstream, recorded
quality posted as feedback, ε-exploration with exact propensities) in rounds. After each round the loop runs:
ingest the spans into DuckDB, label them with their feedback, union the bootstrap table, fit kNN on both
(a logged outcome weighs 1/propensity capped at --max-weight; default 1: unweighted, as the loop), register
and promote it; the gateway hot-reloads it. Each promoted
router is scored on fresh test prompts of the task against every model's recorded outcomes: its cost saving
at 95% of the best single model's quality, AIQ and its quality and cost at the serving λ. The same is shown
for a router trained with full information on the task, and for the best single model.

Exploration cost = what the round's traffic cost minus what the serving router's own choices would have
cost on the same prompts (recorded costs), as a share of the spend.

`python -m benchmarks.adaptation [--quick]`; measures and reports, asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.adaptation_results import (
    COST_WEIGHT,
    FAMILY,
    PLOT,
    QUICK_ROUNDS,
    Curve,
    Options,
    Score,
    TaskResult,
    percent,
    plot,
    render,
)
from benchmarks.router_fixture import DEFAULT_OUTCOMES, SavedRouter, promote_forced, register, tracking_store
from features import schema
from features.base import Featurizer
from features.registry import build
from pipelines import demo_gateway
from pipelines.demo_steps import running_replay_provider, say
from pipelines.ingest import ingest
from pipelines.label import LabelParams, label
from pipelines.loop_params import UNWEIGHTED
from pipelines.outcomes import read_outcomes, write_outcomes
from pipelines.traffic import Prompt, prompts_of
from routers import artifact
from routers.base import Router
from routers.dataset import MAX_PROPENSITY_WEIGHT, TrainingSet, training_set
from routers.decision import choose
from routers.registry import family_class
from routers.routing_model import RoutingModel
from routers.scoring import score
from serving.settings import DEFAULT_REFERENCE

__all__ = ["QUICK_ROUNDS", "Options", "TaskResult", "measure", "plot", "render"]


@dataclass(frozen=True)
class LeftOut:
    """One task left out of the bootstrap: the data of one case."""

    task: str
    table: pa.Table
    """Every outcome (what the replay provider answers)."""
    public: pa.Table
    """The other tasks: the bootstrap."""
    traffic: list[Prompt]
    """The task's prompts outside its test split, sent in rounds (cycled when a round needs more)."""
    test: TrainingSet
    models: tuple[str, ...]


def measure(options: Options) -> list[TaskResult]:
    table = read_outcomes(options.outcomes)
    tasks = options.tasks or tuple(sorted(set(table[schema.TASK].to_pylist())))
    models = tuple(sorted(set(table[schema.MODEL].to_pylist())))
    results = []
    for task in tasks:
        public = table.filter(pc.not_equal(table[schema.TASK], task))
        new = table.filter(pc.equal(table[schema.TASK], task))
        test_rows = new.filter(pc.equal(new[schema.SPLIT], schema.TEST))
        test = training_set(test_rows, models)
        full = _fit(pa.concat_tables([public, new.filter(pc.not_equal(new[schema.SPLIT], schema.TEST))]), models)
        report = score(_predict(full, test, models), test, COST_WEIGHT)
        best = report["best_single_model"]
        result = TaskResult(
            task,
            len(test.prompt_ids),
            _score(full, test, models),
            (best["model"], best["quality"], best["cost"] * 1000),
        )
        tested = set(test.prompt_ids)
        case = LeftOut(
            task, table, public, [p for p in prompts_of(new, None, None) if p.prompt_id not in tested], test, models
        )
        for policy in options.policies:
            say(f"adaptation: {task} left out, {policy} exploration, ε {options.epsilon}")
            result.curves.append(_run(options, case, policy))
        results.append(result)
    if options.plot is not None:
        plot(results, options.plot)
    return results


def _run(options: Options, case: LeftOut, policy: str) -> Curve:
    curve = Curve(case.task, policy)
    test, models, traffic = case.test, case.models, case.traffic
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="routeiq-adapt-") as tmp, tracking_store(Path(tmp)):
        workdir = Path(tmp)
        replay, bootstrap = workdir / "replay.parquet", workdir / "bootstrap.parquet"
        write_outcomes(case.table, replay)
        write_outcomes(case.public, bootstrap)
        serving = _fit(case.public, models)
        version = _promote(serving, models, workdir / "v0")
        curve.logged.append(0)
        curve.scores.append(_score(serving, test, models))
        routing = {"epsilon": options.epsilon, "exploration": policy, "exploration_temperature": options.temperature}
        with running_replay_provider(replay, workdir) as upstream:
            config = demo_gateway.write_config(
                workdir,
                upstream,
                list(models),
                DEFAULT_REFERENCE,
                cost_weight=COST_WEIGHT,
                poll_seconds=0.5,
                routing=routing,
            )
            with demo_gateway.running_gateway(config, workdir) as gateway:
                demo_gateway.await_version(gateway, version)
                sent = 0
                for target in options.rounds:
                    batch = [traffic[(sent + i) % len(traffic)] for i in range(target - sent)]
                    summary = demo_gateway.drive_gateway(gateway, batch, concurrency=options.concurrency)
                    curve.spend += summary.cost_sum
                    curve.greedy_spend += _greedy_spend(serving, batch, models)
                    sent = target
                    time.sleep(1.5)  # the gateway exports spans every 0.5 s
                    warehouse = workdir / "warehouse.duckdb"
                    ingest(workdir / demo_gateway.TRACES, warehouse)
                    labelled, _ = label(warehouse, LabelParams(bootstrap=(bootstrap,)))
                    serving = _fit(labelled, models, options.max_weight)
                    version = _promote(serving, models, workdir / f"v{target}")
                    demo_gateway.await_version(gateway, version)
                    curve.logged.append(target)
                    curve.scores.append(_score(serving, test, models))
                    last = curve.scores[-1]
                    say(f"  {target} logged: cost saving {percent(last.saving)}, AIQ {last.aiq:.3f}")
    curve.seconds = time.perf_counter() - began
    return curve


Fitted = tuple[Featurizer, Router[Any]]


def _fit(table: pa.Table, models: tuple[str, ...], max_weight: float = MAX_PROPENSITY_WEIGHT) -> Fitted:
    """kNN with its default parameters on every row of `table` (logged rows: 1/propensity, capped at `max_weight`)."""
    cls = family_class(FAMILY)
    data = training_set(table, models, max_weight)
    featurizer = build(cls.features).fit(list(data.prompts))
    return featurizer, cls(seed=0).fit(data.with_features(featurizer.transform(list(data.prompts))))


def _predict(fitted: Fitted, data: TrainingSet, models: tuple[str, ...]) -> Any:
    return RoutingModel(*fitted).predict(list(data.prompts), models)


def _score(fitted: Fitted, test: TrainingSet, models: tuple[str, ...]) -> Score:
    report = score(_predict(fitted, test, models), test, COST_WEIGHT)
    router, decisions = report["router"], report["decisions"]
    return Score(router["cost_saving_at_95pct_quality"], router["aiq"], decisions["quality"], decisions["cost"] * 1000)


def _greedy_spend(fitted: Fitted, batch: Sequence[Prompt], models: tuple[str, ...]) -> float:
    """What the serving router's own choices would have cost on `batch` (recorded costs)."""
    prediction = RoutingModel(*fitted).predict([p.text for p in batch], models)
    chosen = choose(prediction.quality, prediction.cost, COST_WEIGHT)
    return float(sum((p.outcomes.get(models[j], (None, None))[1] or 0.0) for p, j in zip(batch, chosen, strict=True)))


def _promote(fitted: Fitted, models: tuple[str, ...], directory: Path) -> int:
    artifact.save(directory, fitted[1], fitted[0])
    version = register(SavedRouter(directory, FAMILY, models))
    promote_forced(version, "adaptation benchmark")
    return version


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptation", description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--task", action="append", default=[], help="a task to leave out (repeatable; default all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"one task, Boltzmann only, rounds {QUICK_ROUNDS}, one request at a time (reproducible)",
    )
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument(
        "--max-weight",
        type=float,
        default=UNWEIGHTED,
        help="cap on a logged outcome's training weight 1/propensity; 1: unweighted (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.max_weight < 1:
        parser.error(f"--max-weight must be at least 1 (1: unweighted), got {args.max_weight}")
    if not args.outcomes.is_file():
        parser.error(f"{args.outcomes} not found; run `routeiq data import routerbench <data-dir>/routerbench`")
    options = Options(args.outcomes, tuple(args.task), plot=args.plot, max_weight=args.max_weight)
    if args.quick:
        tasks = tuple(args.task) or ("mbpp",)
        options = Options(
            args.outcomes,
            tasks,
            ("boltzmann",),
            QUICK_ROUNDS,
            plot=args.plot,
            max_weight=args.max_weight,
            concurrency=1,
        )
    print(render(measure(options), options))  # noqa: T201


if __name__ == "__main__":
    main()
