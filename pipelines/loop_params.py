"""The `loop` section of params.yaml: where each stage of the traces → router pipeline reads and writes,
which families it trains, and the cost weight it evaluates at. Reading only; no stage logic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

PARAMS_FILE = Path("params.yaml")
SECTION = "loop"


UNWEIGHTED: Final = 1.0
"""`max_propensity_weight` that turns the weighting off. The propensity depends on the prompt only, so each
observed outcome is already an unbiased sample of that model's outcome on that prompt; 1/propensity weights add
variance (docs/mlops.md has the measurements)."""


class LoopPaths(BaseModel):
    """Files and directories of the loop, relative to the project root."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    traces: Path = Path("runs/traces")
    warehouse: Path = Path("data/loop/warehouse.duckdb")
    outcomes: Path = Path("data/loop/outcomes.parquet")
    features: Path = Path("data/loop/features")
    routers: Path = Path("data/loop/routers")
    evaluation: Path = Path("data/loop/evaluation.json")
    plots: Path = Path("data/loop/plots")
    registered: Path = Path("data/loop/registered.json")


class LoopParams(LoopPaths):
    """The families the loop tunes and the λ it scores decisions at (the gateway's serving λ)."""

    families: tuple[str, ...] = ("knn", "mlp", "elo", "cheapest", "strongest")
    cost_weight: float = Field(default=20.0, ge=0.0)
    max_propensity_weight: float = Field(default=UNWEIGHTED, ge=1.0)
    """Training weight of a logged outcome: 1/propensity, capped here (public rows weigh 1). 1 (the default) turns
    the weighting off: every observed outcome counts once (off-policy evaluation is unaffected)."""


def read_section(params_file: Path = PARAMS_FILE, section: str = SECTION) -> dict[str, Any]:
    """One section of params.yaml ({} when the file or section is missing)."""
    if not params_file.is_file():
        return {}
    return dict((yaml.safe_load(params_file.read_text()) or {}).get(section) or {})


def loop_params(params_file: Path = PARAMS_FILE) -> LoopParams:
    return LoopParams.model_validate(read_section(params_file))
