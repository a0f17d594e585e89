"""The before/after comparison of the closed loop: the logging policy, the promoted router measured live,
always-the-strongest-model and the oracle, on the same held-apart prompts. Pure arithmetic and rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.traffic import Prompt, TrafficSummary
from routers.base import Prediction
from routers.metrics import cost_weight_grid, single_model_points, sweep, zero_router


@dataclass(frozen=True)
class PolicyResult:
    """Mean recorded quality, USD per 1k prompts, and share per model of one policy on the same prompts."""

    name: str
    quality: float
    cost_per_1k: float
    shares: dict[str, float]


def _known(prompt: Prompt) -> dict[str, tuple[float, float]]:
    """The models with a recorded quality on `prompt` (none on a few prompts: they are left out of every row)."""
    return {m: (q, c or 0.0) for m, (q, c) in prompt.outcomes.items() if q is not None}


def uniform_policy(prompts: list[Prompt], models: list[str], name: str = "logging policy (uniform)") -> PolicyResult:
    """The expected result of drawing a model uniformly per prompt (what the gateway logs without a router)."""
    quality = cost = 0.0
    scored = [known for known in map(_known, prompts) if known]
    for known in scored:
        quality += sum(q for q, _ in known.values()) / len(known)
        cost += sum(c for _, c in known.values()) / len(known)
    share = 1.0 / len(models)
    return PolicyResult(name, quality / len(scored), 1000 * cost / len(scored), dict.fromkeys(models, share))


def fixed_model(prompts: list[Prompt], model: str) -> PolicyResult:
    known = [_known(p)[model] for p in prompts if model in _known(p)]
    return PolicyResult(
        f"always {model}",
        sum(q for q, _ in known) / len(known),
        1000 * sum(c for _, c in known) / len(known),
        {model: 1.0},
    )


def oracle(prompts: list[Prompt]) -> PolicyResult:
    """Per prompt the best recorded quality, from the cheapest model that reached it."""
    quality = cost = 0.0
    shares: dict[str, float] = {}
    scored = [known for known in map(_known, prompts) if known]
    for known in scored:
        model = min(known, key=lambda m: (-known[m][0], known[m][1]))
        quality += known[model][0]
        cost += known[model][1]
        shares[model] = shares.get(model, 0.0) + 1.0 / len(scored)
    return PolicyResult("oracle", quality / len(scored), 1000 * cost / len(scored), shares)


def live(summary: TrafficSummary, name: str) -> PolicyResult:
    return PolicyResult(name, summary.quality, summary.cost_per_1k, summary.shares())


def strongest_model(prompts: list[Prompt]) -> str:
    """The model with the best mean recorded quality on `prompts`."""
    totals: dict[str, list[float]] = {}
    for prompt in prompts:
        for model, (q, _) in _known(prompt).items():
            totals.setdefault(model, []).append(q)
    return max(totals, key=lambda m: sum(totals[m]) / len(totals[m]))


@dataclass(frozen=True)
class Frontier:
    """Cost per 1k prompts and mean recorded quality along a line of the plot (a hull, or a λ sweep)."""

    name: str
    costs_per_1k: tuple[float, ...]
    qualities: tuple[float, ...]


def complete(prompts: Sequence[Prompt], models: Sequence[str]) -> tuple[list[Prompt], np.ndarray, np.ndarray]:
    """The prompts where every model has a recorded quality, and their quality and cost matrices."""
    kept = [p for p in prompts if all(p.outcomes.get(m, (None, None))[0] is not None for m in models)]
    quality = np.array([[p.outcomes[m][0] for m in models] for p in kept], dtype=np.float64)
    cost = np.array([[p.outcomes[m][1] or 0.0 for m in models] for p in kept], dtype=np.float64)
    return kept, quality, cost


def zero_router_hull(prompts: Sequence[Prompt], models: Sequence[str]) -> Frontier:
    """The Zero router: random mixtures of the single models, their upper hull."""
    _, quality, cost = complete(prompts, models)
    hull = zero_router(single_model_points(quality, 1000 * cost))
    return Frontier("Zero router (mixes of single models)", tuple(hull.costs), tuple(hull.qualities))


def router_curve(name: str, quality: np.ndarray, cost: np.ndarray, prediction: Prediction) -> Frontier:
    """The router's decisions at every λ of the sweep, scored on the recorded outcomes of the same prompts."""
    curve = sweep(quality, cost, prediction.quality, prediction.cost, cost_weight_grid(prediction.cost))
    order = np.argsort(curve.costs, kind="stable")
    return Frontier(name, tuple(1000 * curve.costs[order]), tuple(curve.qualities[order]))


def render(results: list[PolicyResult]) -> str:
    lines = [f"{'policy':<44} {'quality':>8} {'$/1k prompts':>13}  top models"]
    for r in results:
        top = ", ".join(f"{m} {s:.0%}" for m, s in sorted(r.shares.items(), key=lambda x: -x[1])[:3])
        lines.append(f"{r.name:<44} {r.quality:8.3f} {r.cost_per_1k:13.4f}  {top}")
    return "\n".join(lines)


def plot(
    results: list[PolicyResult],
    path: Path,
    title: str,
    singles: Sequence[PolicyResult] = (),
    frontiers: Sequence[Frontier] = (),
) -> None:
    """The policies of the table as large markers, every single model as a small one, and the frontiers
    (the Zero router's hull, the promoted router's λ curve) as lines; cost on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    figure, axes = plt.subplots(figsize=(10, 5))
    for frontier in frontiers:
        axes.plot(frontier.costs_per_1k, frontier.qualities, "-", linewidth=1.5, label=frontier.name)
    for single in singles:
        axes.plot(single.cost_per_1k, single.quality, "s", color="0.55", markersize=5)
        axes.annotate(
            single.name.removeprefix("always ").split("/")[-1],
            (single.cost_per_1k, single.quality),
            fontsize=6,
            color="0.35",
            xytext=(3, 3),
            textcoords="offset points",
        )
    for r in results:
        axes.plot(r.cost_per_1k, r.quality, "o", markersize=9, label=r.name)
    axes.set_xscale("log")
    # Labels on the decades only, as plain dollars: minor-tick labels of a log axis overlap.
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"${value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.grid(True, which="both", alpha=0.3)
    axes.set_xlabel("cost per 1k prompts (USD, log scale)")
    axes.set_ylabel("mean recorded quality")
    axes.set_title(title)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
