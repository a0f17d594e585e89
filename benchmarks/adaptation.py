"""Benchmark: how fast the loop makes a router good on traffic unlike its bootstrap data, from logged bandit
feedback alone.

For each RouterBench task in turn: a kNN router is bootstrapped on the other tasks (full information) and
promoted; the left-out task's prompts then go through the real gateway (replay provider upstream, recorded
quality posted as feedback, ε-exploration with exact propensities) in rounds. After each round the loop runs:
ingest the spans into DuckDB, label them with their feedback, union the bootstrap table, fit kNN on both
(traffic weighted by 1/propensity), register and promote it; the gateway hot-reloads it. Each promoted
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.router_fixture import DEFAULT_OUTCOMES, SavedRouter, promote_forced, register, tracking_store
from features import schema
from features.base import Featurizer
from features.registry import build
from pipelines import demo_gateway
from pipelines.demo_steps import running_replay_provider, say
from pipelines.ingest import ingest
from pipelines.label import LabelParams, label
from pipelines.outcomes import read_outcomes, write_outcomes
from pipelines.traffic import Prompt, prompts_of
from routers import artifact
from routers.base import Router
from routers.dataset import TrainingSet, training_set
from routers.decision import choose
from routers.registry import family_class
from routers.routing_model import RoutingModel
from routers.scoring import score
from serving.settings import DEFAULT_REFERENCE

FAMILY: Final = "knn"
COST_WEIGHT: Final = 100.0
EPSILON: Final = 0.2
POLICIES: Final = ("uniform", "boltzmann")
ROUNDS: Final = (250, 500, 1000, 2000)
QUICK_ROUNDS: Final = (60, 120)
TARGET_SHARE: Final = 0.8
"""The goal: after 2,000 logged requests, 80% of the full-information router's cost saving …"""
TARGET_EXPLORATION: Final = 0.10
"""… at an exploration cost below 10% of spend."""
PLOT: Final = Path("docs/adaptation.png")


@dataclass(frozen=True)
class Options:
    outcomes: Path = DEFAULT_OUTCOMES
    tasks: tuple[str, ...] = ()
    """RouterBench tasks to leave out in turn (empty: every task)."""
    policies: tuple[str, ...] = POLICIES
    rounds: tuple[int, ...] = ROUNDS
    """Cumulative logged requests after which the loop runs."""
    epsilon: float = EPSILON
    temperature: float = 0.05
    plot: Path | None = PLOT


@dataclass(frozen=True)
class Score:
    """A router's decisions on the task's test prompts, on recorded outcomes."""

    saving: float | None
    """Cost saving at 95% of the best single model's quality (None: the router never reaches it)."""
    aiq: float
    quality: float
    cost_per_1k: float


@dataclass
class Curve:
    """One task and exploration policy: the score after each round, and what exploration cost."""

    task: str
    policy: str
    logged: list[int] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    spend: float = 0.0
    greedy_spend: float = 0.0
    seconds: float = 0.0

    @property
    def exploration_share(self) -> float:
        return (self.spend - self.greedy_spend) / self.spend if self.spend > 0 else float("nan")


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


@dataclass
class TaskResult:
    task: str
    test_prompts: int
    full_information: Score
    best_single: tuple[str, float, float]
    """(model, quality, cost per 1k) of the best single model on the test prompts."""
    curves: list[Curve] = field(default_factory=list)


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
                _await_version(gateway, version)
                sent = 0
                for target in options.rounds:
                    batch = [traffic[(sent + i) % len(traffic)] for i in range(target - sent)]
                    summary = demo_gateway.drive_gateway(gateway, batch)
                    curve.spend += summary.cost_sum
                    curve.greedy_spend += _greedy_spend(serving, batch, models)
                    sent = target
                    time.sleep(1.5)  # the gateway exports spans every 0.5 s
                    warehouse = workdir / "warehouse.duckdb"
                    ingest(workdir / demo_gateway.TRACES, warehouse)
                    labelled, _ = label(warehouse, LabelParams(bootstrap=(bootstrap,)))
                    serving = _fit(labelled, models)
                    version = _promote(serving, models, workdir / f"v{target}")
                    _await_version(gateway, version)
                    curve.logged.append(target)
                    curve.scores.append(_score(serving, test, models))
                    last = curve.scores[-1]
                    say(f"  {target} logged: cost saving {_percent(last.saving)}, AIQ {last.aiq:.3f}")
    curve.seconds = time.perf_counter() - began
    return curve


Fitted = tuple[Featurizer, Router[Any]]


def _fit(table: pa.Table, models: tuple[str, ...]) -> Fitted:
    """kNN with its default parameters on every row of `table` (logged rows weigh 1/propensity)."""
    cls = family_class(FAMILY)
    data = training_set(table, models)
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


def _await_version(gateway: str, version: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while demo_gateway.router_status(gateway)["champion"]["version"] != version:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not load version {version} within {timeout:.0f} s")
        time.sleep(0.2)


def _percent(value: float | None) -> str:
    return "never reaches 95%" if value is None else f"{value:.0%}"


def share_of_full(curve: Curve, result: TaskResult) -> float | None:
    """The last round's cost saving as a share of the full-information router's (None when either is None)."""
    last, full = curve.scores[-1].saving, result.full_information.saving
    return None if last is None or not full else last / full


def render(results: list[TaskResult], options: Options) -> str:
    lines = [
        "## Adaptation to a new task from logged traffic",
        "",
        f"`python -m benchmarks.adaptation`: per RouterBench task left out, a {FAMILY} router bootstrapped on the "
        "other tasks, then the task's prompts through the real gateway in rounds (replay provider, feedback from "
        f"the recorded outcomes, ε = {options.epsilon}) with the loop (ingest → label → fit on bootstrap + traffic → "
        "register → promote → hot reload) after each. Cost saving = at 95% of the best single model's quality, on "
        f"the task's test prompts with every model's recorded outcome; λ = {COST_WEIGHT:g} for the served choice. "
        f"Goal: after {options.rounds[-1]} logged requests, ≥ {TARGET_SHARE:.0%} of the full-information router's "
        f"saving at < {TARGET_EXPLORATION:.0%} exploration cost.",
        "",
        "| task | policy | " + " | ".join(f"saving @ {n}" for n in (0, *options.rounds)) + " | full information | "
        "share of full | exploration cost | goal |",
        "|---|---|" + "---|" * (len(options.rounds) + 1) + "---|---|---|---|",
    ]
    for result in results:
        for curve in result.curves:
            share = share_of_full(curve, result)
            met = share is not None and share >= TARGET_SHARE and curve.exploration_share < TARGET_EXPLORATION
            lines.append(
                f"| {result.task} | {curve.policy} | "
                + " | ".join(_percent(s.saving) for s in curve.scores)
                + f" | {_percent(result.full_information.saving)} | {'—' if share is None else f'{share:.0%}'} | "
                f"{curve.exploration_share:.1%} | {'met' if met else 'not met'} |"
            )
    lines += [
        "",
        "AIQ (area under the cost–quality curve, smoother than the saving at one quality level) after each round:",
        "",
        "| task | policy | " + " | ".join(f"AIQ @ {n}" for n in (0, *options.rounds)) + " | full information |",
        "|---|---|" + "---|" * (len(options.rounds) + 2),
    ]
    for result in results:
        for curve in result.curves:
            aiqs = " | ".join(f"{s.aiq:.3f}" for s in curve.scores)
            lines.append(f"| {result.task} | {curve.policy} | {aiqs} | {result.full_information.aiq:.3f} |")
    lines += [
        "",
        "| task | test prompts | best single model (quality, $/1k) | full-information AIQ |",
        "|---|---|---|---|",
    ]
    for result in results:
        model, quality, cost = result.best_single
        lines.append(
            f"| {result.task} | {result.test_prompts} | {model} ({quality:.3f}, {cost:.3f}) | "
            f"{result.full_information.aiq:.3f} |"
        )
    if options.plot is not None:
        lines += ["", f"![learning curves]({options.plot.name})"]
    return "\n".join(lines) + "\n"


def plot(results: list[TaskResult], path: Path) -> None:
    """Per task (a column): AIQ (top) and cost saving at 95% quality (bottom) against logged requests, a line per
    policy, the full-information router's level dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(2, len(results), figsize=(4.2 * len(results), 6.4), squeeze=False)
    for column, result in enumerate(results):
        top, bottom = panels[0][column], panels[1][column]
        for curve in result.curves:
            label = f"{curve.policy} (explore {curve.exploration_share:.0%})"
            top.plot(curve.logged, [s.aiq for s in curve.scores], "o-", label=label)
            savings = [np.nan if s.saving is None else 100 * s.saving for s in curve.scores]
            bottom.plot(curve.logged, savings, "o-", label=label)
        top.axhline(result.full_information.aiq, color="k", linestyle="--", label="full information")
        if result.full_information.saving is not None:
            bottom.axhline(100 * result.full_information.saving, color="k", linestyle="--", label="full information")
        bottom.axhline(0.0, color="0.6", linewidth=0.8, label=f"best single: {result.best_single[0].split('/')[-1]}")
        top.set_title(f"{result.task} left out")
        top.set_ylabel("AIQ on the task's test prompts")
        bottom.set_ylabel("cost saving at 95% quality (%)\n(gaps: 95% not reached)")
        bottom.set_xlabel("logged requests of the task")
        for axes in (top, bottom):
            axes.grid(True, alpha=0.3)
            axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptation", description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--task", action="append", default=[], help="a task to leave out (repeatable; default all)")
    parser.add_argument("--quick", action="store_true", help=f"one task, Boltzmann only, rounds {QUICK_ROUNDS}")
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    if not args.outcomes.is_file():
        parser.error(f"{args.outcomes} not found; run `routeiq data import routerbench <data-dir>/routerbench`")
    options = Options(args.outcomes, tuple(args.task), plot=args.plot)
    if args.quick:
        options = Options(args.outcomes, tuple(args.task) or ("mbpp",), ("boltzmann",), QUICK_ROUNDS, plot=args.plot)
    print(render(measure(options), options))  # noqa: T201


if __name__ == "__main__":
    main()
