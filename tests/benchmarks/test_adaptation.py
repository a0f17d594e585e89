"""The adaptation benchmark in its quick mode, end to end: a router bootstrapped without a task learns it from
the gateway's own logged traffic (real gateway, replay provider, feedback, DuckDB ingest, label, MLflow
promotion and hot reload each round), and the report derives its figures from what was measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import adaptation
from pipelines.outcomes import import_source, write_outcomes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[adaptation.Options, list]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("adaptation")
    table, _ = import_source("routerbench", data_dir / "routerbench")
    write_outcomes(table, root / "routerbench.parquet")
    options = adaptation.Options(
        root / "routerbench.parquet",
        ("mbpp",),
        ("boltzmann",),
        adaptation.QUICK_ROUNDS,
        plot=root / "curves.png",
        concurrency=1,  # the gateway's seeded draws then follow prompt order: the same run every time
    )
    return options, adaptation.measure(options)


def test_the_router_learns_the_left_out_task_from_logged_traffic(run: tuple) -> None:  # type: ignore[type-arg]
    options, results = run
    (result,) = results
    (curve,) = result.curves
    assert curve.logged == [0, *adaptation.QUICK_ROUNDS]
    first, last = curve.scores[0], curve.scores[-1]
    assert last.aiq > first.aiq, (first, last)  # it learned the task from what the gateway logged
    assert result.full_information.aiq >= first.aiq
    assert curve.spend > 0 and curve.greedy_spend > 0 and abs(curve.exploration_share) < 1
    assert options.plot.is_file()


def test_the_report_shows_each_round_and_the_goal(run: tuple) -> None:  # type: ignore[type-arg]
    options, results = run
    text = adaptation.render(results, options)
    saving, aiq = [line for line in text.splitlines() if line.startswith("| mbpp | boltzmann |")]
    cells = [c.strip() for c in saving.strip("|").split("|")]
    assert len(cells) == 2 + len(options.rounds) + 1 + 4
    assert cells[-1] in {"met", "not met"} and cells[-2].endswith("%")
    curve = results[0].curves[0]
    assert aiq.split("|")[3].strip() == f"{curve.scores[0].aiq:.3f}"  # the bootstrap router's AIQ, round 0
    assert f"after {options.rounds[-1]} logged requests" in text
