"""The adaptation benchmark's settings, what it measures per task and policy, and its report: the table of
cost savings and AIQ after each round, and the learning-curve plot. Rendering only; `benchmarks.adaptation`
measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from benchmarks.router_fixture import DEFAULT_OUTCOMES
from pipelines.loop_params import UNWEIGHTED

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
    max_weight: float = UNWEIGHTED
    """Cap on a logged outcome's training weight 1/propensity (1: unweighted), as `loop.max_propensity_weight`."""
    concurrency: int = 8
    """Requests in flight while a round is sent. Above 1 the gateway's seeded exploration draws follow arrival
    order, so two runs differ; 1 (the quick mode) makes a run reproducible."""


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


@dataclass
class TaskResult:
    task: str
    test_prompts: int
    full_information: Score
    best_single: tuple[str, float, float]
    """(model, quality, cost per 1k) of the best single model on the test prompts."""
    curves: list[Curve] = field(default_factory=list)


def percent(value: float | None) -> str:
    return "never reaches 95%" if value is None else f"{value:.0%}"


def share_of_full(curve: Curve, result: TaskResult) -> float | None:
    """The last round's cost saving as a share of the full-information router's (None when either is None)."""
    last, full = curve.scores[-1].saving, result.full_information.saving
    return None if last is None or not full else last / full


def _weighting(max_weight: float) -> str:
    return "1 (unweighted)" if max_weight <= 1 else f"1/propensity, capped at {max_weight:g}"


def render(results: list[TaskResult], options: Options) -> str:
    lines = [
        "## Adaptation to a new task from logged traffic",
        "",
        f"`python -m benchmarks.adaptation`: per RouterBench task left out, a {FAMILY} router bootstrapped on the "
        "other tasks, then the task's prompts through the real gateway in rounds (replay provider, feedback from "
        f"the recorded outcomes, ε = {options.epsilon}) with the loop (ingest → label → fit on bootstrap + traffic → "
        "register → promote → hot reload) after each. Cost saving = at 95% of the best single model's quality, on "
        f"the task's test prompts with every model's recorded outcome; λ = {COST_WEIGHT:g} for the served choice. "
        f"A logged outcome's training weight: {_weighting(options.max_weight)}. "
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
                + " | ".join(percent(s.saving) for s in curve.scores)
                + f" | {percent(result.full_information.saving)} | {'—' if share is None else f'{share:.0%}'} | "
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
