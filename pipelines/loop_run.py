"""One run of the loop in a project: `dvc repro register`, then the evaluated best family's new version through
the registry's promotion gate (the same gate as `routeiq promote`). Used by `routeiq loop`, its watcher and the demo.

Promotes through `registry.promotion` only; never forces, never prints (callers say the verdict).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mlflow import MlflowClient

from pipelines.loop_params import loop_params
from pipelines.workspace import dvc
from registry.promotion import GateRefused, promote
from registry.versions import get_version

LOOP_TARGET: Final = "register"
"""The last stage of the loop: `dvc repro register` runs it and what it depends on (not the data imports)."""
REASON: Final = "closed loop: best off-policy utility"
NOTHING_NEW: Final = "nothing promoted: dvc repro registered no new version (training re-ran nothing)"


@dataclass(frozen=True)
class Promotion:
    """What the promotion step decided: the family and version promoted (None when the gate refused or none
    qualified), and the one-line verdict with its figures."""

    family: str | None
    version: int | None
    verdict: str


def promote_best(evaluation: dict[str, Any], registered: dict[str, Any]) -> Promotion:
    """Promote the evaluated best through the gate; when there is none or the gate refuses, the verdict says so
    in one line with the figures and nothing is promoted (the current Production version stays)."""
    family = evaluation.get("best")
    if family is None:
        return Promotion(None, None, f"nothing promoted: {evaluation.get('verdict', 'no family qualified')}")
    client = MlflowClient()
    version = int(registered["versions"][family])
    try:
        promote(client, get_version(client, version), reason=REASON)
    except GateRefused as refused:
        return Promotion(None, None, f"nothing promoted: the gate refused {family} v{version}: {refused}")
    metrics = evaluation["families"][family]
    verdict = (
        f"{family} v{version} → Production: DR quality {metrics['test_dr_quality']:.3f} "
        f"[{metrics['test_dr_quality_low']:.3f}, {metrics['test_dr_quality_high']:.3f}], DR cost "
        f"${1000 * metrics['test_dr_cost']:.4f}/1k vs logging {metrics['test_logging_quality']:.3f} at "
        f"${1000 * metrics['test_logging_cost']:.4f}/1k; utility advantage {metrics['test_dr_advantage']:+.4f} "
        f"[{metrics['test_dr_advantage_low']:+.4f}, {metrics['test_dr_advantage_high']:+.4f}] on "
        f"{metrics['test_ope_effective_samples']:.0f} effective samples"
    )
    return Promotion(family, version, verdict)


def loop_results(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the last `dvc repro` in `root` wrote: the evaluation (the family to promote) and the registered versions."""
    params = loop_params(root / "params.yaml")
    evaluation = json.loads((root / params.evaluation).read_text())
    registered = json.loads((root / params.registered).read_text())
    return evaluation, registered


def run_once(root: Path, echo: Callable[[str], None] | None = None) -> Promotion:
    """`dvc repro register` in the project at `root` (each output line to `echo`), then promote its best
    through the gate. A failing stage raises `PipelineError`; a refusal is a `Promotion` with no version, and so
    is a repro that registered nothing new (training re-ran nothing): no version is promoted twice."""
    registered = root / loop_params(root / "params.yaml").registered
    before = registered.read_text() if registered.is_file() else None
    dvc(root, ["repro", LOOP_TARGET], echo)
    if registered.read_text() == before:
        return Promotion(None, None, NOTHING_NEW)
    return promote_best(*loop_results(root))
