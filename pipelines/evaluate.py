"""DVC stage `evaluate`: every tuned family side by side on the held-out test split — full-information
metrics where all models' outcomes are known, off-policy estimates (IPS, SNIPS, DR with 95% intervals) on
logged traffic — the family to promote, and the cost–quality plot.

`python -m pipelines.evaluate`; reads `<routers>/*/metrics.json`, writes `evaluation.json` and `<plots>/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipelines.loop_params import LoopParams, loop_params
from pipelines.tune import METRICS_FILE
from registry import names

PLOT_FILE = "frontier.png"
SUMMARY_KEYS = (
    "test_aiq",
    "test_dr_quality",
    "test_dr_quality_low",
    "test_dr_quality_high",
    "test_dr_cost",
    "test_ips_quality",
    "test_snips_quality",
    "test_dr_utility",
    "test_dr_utility_low",
    "test_dr_utility_high",
    "test_dr_advantage",
    "test_dr_advantage_low",
    "test_dr_advantage_high",
    "test_logging_quality",
    "test_logging_cost",
    "test_logging_utility",
    "test_ope_samples",
    "test_ope_prompts",
    "test_ope_effective_samples",
)


SELECTION = "valid_"
"""The family is chosen on validation metrics, so its test estimates stay unbiased (no winner's curse)."""
PRINTED_KEYS = ("test_aiq", "test_dr_quality", "test_dr_cost")
"""What the stage prints per family; the rest is in evaluation.json."""
ADVANTAGE, ADVANTAGE_LOW, ADVANTAGE_HIGH = "test_dr_advantage", "test_dr_advantage_low", "test_dr_advantage_high"
EFFECTIVE = "test_ope_effective_samples"


def evaluate(params: LoopParams) -> dict[str, Any]:
    """Per family its test metrics and validation figures; `best` (see `choose_best`) and `verdict`, one line
    saying what was chosen and why, or why nothing was."""
    results = {f: json.loads((params.routers / f / METRICS_FILE).read_text()) for f in params.families}
    families = {f: {k: r["metrics"][k] for k in SUMMARY_KEYS if k in r["metrics"]} for f, r in results.items()}
    selection = {f: _validation(r["metrics"]) for f, r in results.items()}
    best = choose_best(selection)
    return {
        "families": families,
        "validation": {f: {k: m[k] for k in SUMMARY_KEYS if k in m} for f, m in selection.items()},
        "best": best,
        "verdict": verdict(selection, best),
        "cost_weight": params.cost_weight,
    }


def _validation(metrics: dict[str, float]) -> dict[str, float]:
    """Validation metrics under their test names, for `choose_best`."""
    return {"test_" + k.removeprefix(SELECTION): v for k, v in metrics.items() if k.startswith(SELECTION)}


def choose_best(families: dict[str, dict[str, float]]) -> str | None:
    """On logged traffic: among the families whose validation advantage over the logging policy is positive,
    the one whose advantage is highest at the low end of its 95% interval (a family whose estimate rests on
    fewer effective samples must earn more to be chosen). The gate then asks the test split, which the choice
    never saw, for the whole interval above 0. On full-information data: the highest validation AIQ. None when
    no family qualifies."""
    logged = {f: m for f, m in families.items() if ADVANTAGE_LOW in m}
    if logged:
        ahead = {f: m for f, m in logged.items() if m[ADVANTAGE] > 0.0}
        return max(ahead, key=lambda f: (ahead[f][ADVANTAGE_LOW], ahead[f][names.OFF_POLICY_METRIC])) if ahead else None
    full = {f: m for f, m in families.items() if names.GATE_METRIC in m}
    return max(full, key=lambda f: full[f][names.GATE_METRIC]) if full else None


def verdict(families: dict[str, dict[str, float]], best: str | None) -> str:
    """One line: the chosen family and the validation figures it was chosen on, or why none was."""
    logged = {f: m for f, m in families.items() if ADVANTAGE in m}
    if not logged:
        return f"chose {best} on validation AIQ" if best else "no family could be scored on validation"
    if best is not None:
        return f"chose {best}: validation advantage over the logging policy {_advantage(logged[best])}"
    top = max(logged, key=lambda f: logged[f][ADVANTAGE])
    return (
        f"no family beats the logging policy on validation; the closest, {top}: {_advantage(logged[top])}. "
        "Log more traffic (more effective samples) or explore more"
    )


def _advantage(m: dict[str, float]) -> str:
    return (
        f"{m[ADVANTAGE]:+.4f} utility [{m[ADVANTAGE_LOW]:+.4f}, {m[ADVANTAGE_HIGH]:+.4f}] on "
        f"{m.get(EFFECTIVE, 0.0):.0f} effective samples"
    )


def plot(evaluation: dict[str, Any], path: Path) -> None:
    """Each family's estimated (cost, quality) at the serving λ with its 95% interval, and the logging policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for family, m in evaluation["families"].items():
        if "test_dr_quality" not in m:
            continue
        low, high = m["test_dr_quality_low"], m["test_dr_quality_high"]
        axes.errorbar(
            1000 * m["test_dr_cost"],
            m["test_dr_quality"],
            yerr=[[m["test_dr_quality"] - low], [high - m["test_dr_quality"]]],
            fmt="o",
            capsize=3,
            label=family,
        )
    logging = next((m for m in evaluation["families"].values() if "test_logging_quality" in m), None)
    if logging is not None:
        axes.plot(
            1000 * logging["test_logging_cost"],
            logging["test_logging_quality"],
            "k*",
            markersize=12,
            label="logging policy",
        )
    axes.set_xlabel("cost per 1k prompts (USD, doubly-robust estimate)")
    axes.set_ylabel("quality (doubly-robust estimate, 95% interval)")
    axes.set_title(f"Held-out logged traffic, λ = {evaluation['cost_weight']}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    params = loop_params()
    evaluation = evaluate(params)
    params.evaluation.parent.mkdir(parents=True, exist_ok=True)
    params.evaluation.write_text(json.dumps(evaluation, indent=2, sort_keys=True) + "\n")
    plot(evaluation, params.plots / PLOT_FILE)
    for family, m in evaluation["families"].items():
        shown = ", ".join(f"{k.removeprefix('test_')} {v:.4f}" for k, v in m.items() if k in PRINTED_KEYS)
        print(f"{family}: {shown}", file=sys.stderr)  # noqa: T201
    print(evaluation["verdict"], file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
