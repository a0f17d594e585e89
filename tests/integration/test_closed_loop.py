"""The closed loop end to end on the `small` profile: a gateway with no router logs uniform traffic with
feedback, `dvc repro` turns the traces into registered routers, the best is promoted through the gate and
hot-reloaded, and held-apart prompts measure it live. Real processes, real DVC, MLflow, DuckDB, Optuna."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from mlflow import MlflowClient

from pipelines.closed_loop import LoopOutcome, run_loop, tracking_store
from pipelines.workspace import dvc
from registry import names
from registry.versions import get_version

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _step(number: int, title: str, work: Callable[[], Any]) -> Any:
    return work()


@pytest.fixture(scope="module")
def outcome(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LoopOutcome:
    return run_loop(REPO, data_dir, tmp_path_factory.mktemp("loop"), "small", _step)


def test_the_promoted_router_halves_the_cost_of_the_logging_policy_at_no_less_quality(outcome: LoopOutcome) -> None:
    logging, live = outcome.results[0], outcome.results[1]
    assert outcome.live.failed == 0 and outcome.logged.failed == 0
    assert live.cost_per_1k <= 0.5 * logging.cost_per_1k, (live, logging)
    assert live.quality >= logging.quality, (live, logging)


def test_the_off_policy_estimate_before_promotion_predicts_the_live_quality(outcome: LoopOutcome) -> None:
    metrics = outcome.evaluation["families"][outcome.promoted_family]
    live = outcome.live.quality
    assert abs(metrics["test_dr_quality"] - live) <= 0.05, (metrics, live)
    assert metrics["test_dr_quality_low"] <= live <= metrics["test_dr_quality_high"], (metrics, live)


def test_a_second_repro_is_a_no_op(outcome: LoopOutcome) -> None:
    assert "didn't change" in outcome.second_repro or "up to date" in outcome.second_repro
    assert "Running stage" not in outcome.second_repro


def test_every_registered_version_records_its_provenance(outcome: LoopOutcome) -> None:
    data_hash = json.loads((outcome.workspace / "data/loop/routers/knn/metrics.json").read_text())["data_hash"]
    with tracking_store(outcome.workspace / "mlflow.db"):
        client = MlflowClient()
        for family, version in outcome.registered["versions"].items():
            info = get_version(client, int(version))
            assert info.family == family
            assert info.tags[names.TAG_DATA_HASH] == data_hash
            assert json.loads(info.tags[names.TAG_PARAMS]) is not None
            assert len(info.tags[names.TAG_GIT_COMMIT].removesuffix("-dirty")) == 40  # the code's commit
            assert {names.OFF_POLICY_METRIC, names.LOGGING_POLICY_METRIC, "test_aiq"} <= set(info.metrics)
        promoted = get_version(client, outcome.promoted_version)
        assert promoted.stage == names.PRODUCTION_STAGE and names.PRODUCTION_ALIAS in promoted.aliases


def test_changing_one_familys_params_changes_only_that_family(outcome: LoopOutcome) -> None:
    params_file = outcome.workspace / "params.yaml"
    saved = params_file.read_text()
    params = yaml.safe_load(saved)
    params["tune"]["knn"]["trials"] += 1
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(dvc(outcome.workspace, ["status", "--json"])))
    finally:
        params_file.write_text(saved)
    assert "tune@knn" in changed
    assert not changed & {"tune@elo", "tune@cheapest", "tune@strongest", "featurize", "label"}, changed


def test_metrics_and_plots_render_without_network(outcome: LoopOutcome, tmp_path: Path) -> None:
    metrics = dvc(outcome.workspace, ["metrics", "show", "--json"])
    assert "test_dr_quality" in metrics and "requests" in metrics
    dvc(outcome.workspace, ["plots", "show", "-o", str(tmp_path / "plots")])
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "frontier.png" in page and "http://" not in page and "https://" not in page and "<script" not in page
