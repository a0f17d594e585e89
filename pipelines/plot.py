"""Draw the cost–quality figure of an evaluation report (router curve and hull, baselines) into a PNG.

Reads only the report dict and computes no metric; it never switches matplotlib's global backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE_SIZE = (8.0, 5.5)
FIGURE_DPI = 120


def plot_curves(report: Mapping[str, Any], path: Path) -> None:
    """Router's λ-sweep curve and hull, single models (labelled), Zero-router hull, random line, oracle."""
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    # An Agg canvas for this figure only: no pyplot, no global backend, safe in a server or a thread.
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    _draw_router(axes, report)
    _draw_baselines(axes, report)
    summary = report["summary"]
    axes.set_title(
        f"router AIQ {summary['router_aiq']:.3f} · Zero router {summary['zero_router_aiq']:.3f} · "
        f"oracle {summary['oracle_aiq']:.3f} ({summary['prompts_evaluated']} prompts)"
    )
    axes.set_xlabel("mean cost per prompt (USD)")
    axes.set_ylabel("mean quality")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.savefig(path, dpi=FIGURE_DPI, format="png")


def _xy(points: Sequence[Mapping[str, float]]) -> tuple[list[float], list[float]]:
    return [p["cost"] for p in points], [p["quality"] for p in points]


def _draw_router(axes: Axes, report: Mapping[str, Any]) -> None:
    router = report["router"]
    axes.plot(*_xy(router["curve"]), "o", color="tab:blue", markersize=3, alpha=0.6, label="router (λ sweep)")
    axes.plot(*_xy(router["hull"]), "-", color="tab:blue", linewidth=2, label="router hull")
    decisions = report["decisions"]
    axes.plot(decisions["cost"], decisions["quality"], "X", color="tab:red", markersize=9, label="router decisions")


def _draw_baselines(axes: Axes, report: Mapping[str, Any]) -> None:
    singles = report["single_models"]
    for model, point in singles.items():
        axes.plot(point["cost"], point["quality"], "s", color="tab:gray", markersize=6)
        axes.annotate(model, (point["cost"], point["quality"]), textcoords="offset points", xytext=(5, 3), fontsize=7)
    axes.plot(*_xy(report["zero_router"]["hull"]), "--", color="tab:gray", label="Zero router (single models' hull)")
    random = report["random"]
    ends = [singles[random["cheapest_model"]], singles[random["best_model"]]]
    axes.plot(*_xy(ends), ":", color="tab:orange", label="random: cheapest ↔ best single model")
    axes.plot(
        random["cost"],
        random["quality"],
        "o",
        color="tab:orange",
        markersize=6,
        label="random at matched cost",
    )
    oracle = report["oracle"]
    axes.plot(*_xy(oracle["hull"]), "-", color="tab:green", linewidth=1, alpha=0.5, label="oracle frontier")
    axes.plot(oracle["cost"], oracle["quality"], "*", color="tab:green", markersize=13, label="oracle")
