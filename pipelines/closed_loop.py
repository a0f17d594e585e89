"""The closed loop, end to end, on real recorded outcomes: gateway (no router) → logged traffic with feedback
→ `dvc repro` (ingest … register) → promotion through the gate → hot reload → held-apart traffic → before/after.

Used by `make demo` (profile `demo`) and the end-to-end tests (profiles `small` and `two`). Every process it
starts is on loopback and is stopped when its context exits, also on Ctrl-C.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from features import schema
from pipelines import demo_gateway, loop_report
from pipelines.demo_steps import running_replay_provider, say
from pipelines.loop_params import loop_params, read_section
from pipelines.loop_run import LOOP_TARGET, Promotion, loop_results, promote_best
from pipelines.outcomes import import_source, write_outcomes
from pipelines.traffic import Prompt, TrafficSummary, prompts_of
from pipelines.workspace import dvc, prepare
from registry import names
from registry.loading import load_reference
from registry.tracking import using_store
from routers.routing_model import RoutingModel
from serving.settings import DEFAULT_REFERENCE

T = TypeVar("T")
Step = Callable[[int, str, Callable[[], T]], T]
RELOAD_TIMEOUT_S = 60.0


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
            evaluation, registered = loop_results(workspace)
            promotion = step(5, "Promote the best family through the gate", lambda: _promote(evaluation, registered))
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


def _promote(evaluation: dict[str, Any], registered: dict[str, Any]) -> Promotion:
    promotion = promote_best(evaluation, registered)
    say(promotion.verdict)
    return promotion


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
