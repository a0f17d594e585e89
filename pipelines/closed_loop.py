"""The closed loop, end to end, on real recorded outcomes: gateway (no router) → logged traffic with feedback
→ `dvc repro` (ingest … register) → promotion through the gate → hot reload → held-apart traffic → before/after.

Used by `make demo` (profile `demo`) and the end-to-end tests (profiles `small` and `two`). Every process it
starts is on loopback and is stopped when its context exits, also on Ctrl-C.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from mlflow import MlflowClient

from features import schema
from pipelines import demo_gateway, loop_report
from pipelines.demo_steps import running_replay_provider, say
from pipelines.loop_params import loop_params, read_section
from pipelines.outcomes import import_source, write_outcomes
from pipelines.traffic import Prompt, TrafficSummary, prompts_of
from pipelines.workspace import dvc, prepare
from registry import names
from registry.loading import load_reference
from registry.promotion import GateRefused, promote
from registry.tracking import using_store
from registry.versions import get_version
from routers.routing_model import RoutingModel
from serving.settings import DEFAULT_REFERENCE

T = TypeVar("T")
Step = Callable[[int, str, Callable[[], T]], T]
RELOAD_TIMEOUT_S = 60.0
LOOP_TARGET = "register"
"""The last stage of the loop: `dvc repro register` runs it and what it depends on (not the data imports)."""


@dataclass(frozen=True)
class Promotion:
    """What step 5 decided: the family and version promoted (None when the gate refused or none qualified),
    and the one-line verdict with its figures."""

    family: str | None
    version: int | None
    verdict: str


@dataclass
class LoopOutcome:
    """What one run of the loop produced and measured."""

    workspace: Path
    logged: TrafficSummary
    live: TrafficSummary
    evaluation: dict[str, Any]
    registered: dict[str, Any]
    promotion: Promotion
    results: list[loop_report.PolicyResult]
    second_repro: str

    @property
    def promoted_family(self) -> str | None:
        return self.promotion.family

    @property
    def promoted_version(self) -> int | None:
        return self.promotion.version


def profile(name: str, repo: Path) -> dict[str, Any]:
    profiles = read_section(repo / "params.yaml", "profiles")
    if name not in profiles:
        raise ValueError(f"params.yaml has no profile {name!r}; use one of {', '.join(profiles)}")
    return dict(profiles[name])


@contextmanager
def tracking_store(path: Path) -> Iterator[str]:
    """A fresh sqlite MLflow store at `path` for this process and its children; everything restored after."""
    with using_store(f"sqlite:///{path.resolve()}") as uri:
        yield uri


def run_loop(repo: Path, data_dir: Path, workdir: Path, profile_name: str, step: Step[Any]) -> LoopOutcome:
    settings = profile(profile_name, repo)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    outcomes = workdir / "routerbench.parquet"
    only = settings.get("models")
    table = step(1, "Import RouterBench (real recorded outcomes)", lambda: _import(data_dir, outcomes, only))
    models = sorted(set(table[schema.MODEL].to_pylist()))
    # Each pass sends every training prompt once more; the uniform fallback draws a model afresh each time,
    # so repeated prompts log several models' outcomes, as repeated real traffic does.
    train = prompts_of(table, schema.TRAIN, int(settings["train_prompts"])) * int(settings.get("passes", 1))
    test = prompts_of(table, schema.TEST, int(settings["test_prompts"]))
    workspace = prepare(workdir / "pipeline", repo, settings)
    loop = loop_params(workspace / "params.yaml")
    with tracking_store(workspace / "mlflow.db"), running_replay_provider(outcomes, workdir) as upstream:
        config = demo_gateway.write_config(
            workspace, upstream, models, DEFAULT_REFERENCE, cost_weight=loop.cost_weight, poll_seconds=1.0
        )
        with demo_gateway.running_gateway(config, workspace) as gateway:
            logged = step(
                2,
                "Log traffic: train prompts through the gateway (no router yet)",
                # One request at a time: the fallback's seeded draws then follow prompt order, run after run.
                lambda: demo_gateway.drive_gateway(gateway, train, concurrency=1),
            )
            time.sleep(1.5)  # the gateway exports spans every 0.5 s; let the last ones reach the files
            step(
                3,
                "dvc repro: ingest → label + split → featurize → tune@family → evaluate → register",
                lambda: dvc(workspace, ["repro", LOOP_TARGET], say),
            )
            second = step(4, "A second dvc repro changes nothing", lambda: _no_op(workspace))
            evaluation = json.loads((workspace / loop.evaluation).read_text())
            registered = json.loads((workspace / loop.registered).read_text())
            promotion = step(
                5, "Promote the best family through the gate", lambda: promote_best(evaluation, registered)
            )
            if promotion.version is not None:
                version = promotion.version
                step(6, "The running gateway hot-reloads it", lambda: _await_version(gateway, version))
                serving = f"{promotion.family} router v{version} (live)"
            else:
                say("nothing to reload: the gateway keeps serving what it served (the current Production version)")
                serving = f"{_serving(gateway)} (live, nothing promoted)"
            live = step(
                7,
                "Held-apart test prompts through the gateway",
                lambda: demo_gateway.drive_gateway(gateway, test),
            )
            frontiers = [loop_report.zero_router_hull(test, models)]
            if promotion.version is not None:
                frontiers.append(_router_frontier(promotion, test, models))
    results = [
        loop_report.uniform_policy(test, models),
        loop_report.live(live, serving),
        loop_report.fixed_model(test, loop_report.strongest_model(test)),
        loop_report.oracle(test),
    ]
    singles = [loop_report.fixed_model(loop_report.complete(test, models)[0], m) for m in models]
    step(
        8,
        "Before / after on the held-apart prompts",
        lambda: _report(results, workdir, evaluation, singles, frontiers),
    )
    return LoopOutcome(workspace, logged, live, evaluation, registered, promotion, results, second)


def _no_op(workspace: Path) -> str:
    output = dvc(workspace, ["repro", LOOP_TARGET])
    ran = [line for line in output.splitlines() if line.startswith("Running stage")]
    say("nothing re-ran" if not ran else f"re-ran: {', '.join(ran)}")
    return output


def _import(data_dir: Path, outcomes: Path, only: list[str] | None) -> Any:
    """RouterBench's outcomes (only the profile's `models`, when it names some), written for the replay provider."""
    table, stats = import_source("routerbench", data_dir / "routerbench")
    if only:
        recorded = set(table[schema.MODEL].to_pylist())
        unknown = sorted(set(only) - recorded)
        if unknown:
            raise ValueError(f"profile models {unknown} are not in RouterBench; use some of {sorted(recorded)}")
        table = table.filter(pc.is_in(table[schema.MODEL], pa.array(only)))
    write_outcomes(table, outcomes)
    rows = f"{table.num_rows} rows" if only else f"{stats.rows} rows"
    say(f"{rows}, {stats.prompts} prompts, {len(set(table[schema.MODEL].to_pylist()))} models")
    return table


def promote_best(evaluation: dict[str, Any], registered: dict[str, Any]) -> Promotion:
    """Promote the evaluated best through the gate; when there is none or the gate refuses, say so in one line
    with the figures and promote nothing (the current Production version stays)."""
    family = evaluation.get("best")
    if family is None:
        verdict = f"nothing promoted: {evaluation.get('verdict', 'no family qualified')}"
        say(verdict)
        return Promotion(None, None, verdict)
    client = MlflowClient()
    version = int(registered["versions"][family])
    try:
        promote(client, get_version(client, version), reason="closed loop: best off-policy utility")
    except GateRefused as refused:
        verdict = f"nothing promoted: the gate refused {family} v{version}: {refused}"
        say(verdict)
        return Promotion(None, None, verdict)
    metrics = evaluation["families"][family]
    verdict = (
        f"{family} v{version} → Production: DR quality {metrics['test_dr_quality']:.3f} "
        f"[{metrics['test_dr_quality_low']:.3f}, {metrics['test_dr_quality_high']:.3f}], DR cost "
        f"${1000 * metrics['test_dr_cost']:.4f}/1k vs logging {metrics['test_logging_quality']:.3f} at "
        f"${1000 * metrics['test_logging_cost']:.4f}/1k; utility advantage {metrics['test_dr_advantage']:+.4f} "
        f"[{metrics['test_dr_advantage_low']:+.4f}, {metrics['test_dr_advantage_high']:+.4f}] on "
        f"{metrics['test_ope_effective_samples']:.0f} effective samples"
    )
    say(verdict)
    return Promotion(family, version, verdict)


def _serving(gateway: str) -> str:
    champion = demo_gateway.router_status(gateway)["champion"]
    return f"{champion['family']} router v{champion['version']}" if champion["version"] else "fallback (uniform)"


def _await_version(gateway: str, version: int) -> None:
    started = time.monotonic()
    champion = demo_gateway.await_version(gateway, version, RELOAD_TIMEOUT_S)
    waited = time.monotonic() - started
    say(f"gateway now serves v{version} ({champion['last_poll']['message']}) after {waited:.1f} s")


def _router_frontier(promotion: Promotion, test: list[Prompt], models: list[str]) -> loop_report.Frontier:
    """The promoted version's decisions over the λ sweep on the held-apart prompts with every outcome recorded."""
    loaded = load_reference(f"models:/{names.REGISTERED_MODEL}/{promotion.version}")
    kept, quality, cost = loop_report.complete(test, models)
    prediction = RoutingModel(loaded.featurizer, loaded.router).predict([p.text for p in kept], models)
    return loop_report.router_curve(f"{promotion.family} v{promotion.version} over λ", quality, cost, prediction)


def _report(
    results: list[loop_report.PolicyResult],
    workdir: Path,
    evaluation: dict[str, Any],
    singles: list[loop_report.PolicyResult],
    frontiers: list[loop_report.Frontier],
) -> None:
    for line in loop_report.render(results).splitlines():
        say(line)
    path = workdir / "before-after.png"
    title = f"Held-apart RouterBench prompts, λ = {evaluation['cost_weight']}"
    loop_report.plot(results, path, title, singles, frontiers)
    say(f"plot {path}")
