"""Escalation on evidence, measured live (`python -m benchmarks.cascade`, in `make bench`): the cascade serving
mode against the best prompt-only router, per task, through the real gateway and the replay provider.

A cascade version and a matrix-factorisation version are fitted on the RouterBench train split (recorded answers
included: the cascade's verifier learns from them). The test prompts of each task are sent through a gateway
serving (1) the cascade version with `routing.cascade: verifier`, (2) the same version routed on the prompt alone
(`cascade: off`), and (3) the matrix-factorisation version, at each λ, one request at a time. Quality is the
recorded quality of the answer served; cost counts both calls of an escalated request; latency is the client's
wall time per request (the replay provider answers at once, so an escalation's real cost in latency — one more
model call — is not in it: the share of escalated requests is reported for that).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.router_fixture import DEFAULT_OUTCOMES
from features import schema
from features.registry import build
from pipelines import demo_gateway
from pipelines.demo_steps import running_replay_provider, say
from pipelines.outcomes import read_outcomes, write_outcomes
from pipelines.provenance import git_commit
from pipelines.traffic import Prompt, TrafficSummary, drive, prompts_of
from routers import artifact
from routers.base import Router
from routers.cascade import CascadeRouter
from routers.dataset import training_set
from routers.registry import family_class

CASCADE: Final = "cascade (verifier)"
PROMPT_ONLY: Final = "cascade version, prompt only"
PROMPT_FAMILY: Final = "matrix_factorization"
"""The prompt-only family compared: the best scorer of docs/routers.md's table among the built-in learned ones."""
COST_WEIGHTS: Final = (10.0, 40.0)
DECISION_BUDGET_MS: Final = 10_000.0
"""Generous, so every request is the router's decision (a semantic family's featurizer is slow on a busy machine:
the default 250 ms would let the fallback answer some, and the comparison would be of the fallback)."""


@dataclass(frozen=True)
class Options:
    outcomes: Path = DEFAULT_OUTCOMES
    cost_weights: tuple[float, ...] = COST_WEIGHTS
    limit: int | None = None
    """Test prompts per task (None: all)."""


@dataclass(frozen=True)
class Point:
    quality: float
    cost_per_1k: float
    ms_per_request: float
    escalated: float
    """Share of requests answered by two calls."""


@dataclass
class TaskResult:
    task: str
    prompts: int
    points: dict[tuple[str, float], Point] = field(default_factory=dict)
    singles: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The cascade family's pair alone (its cheapest good-enough model and its strong one): (mean recorded
    quality, USD per 1k prompts)."""


@dataclass(frozen=True)
class Results:
    tasks: list[TaskResult]
    cheap: str
    strong: str
    options: Options


def measure(options: Options) -> Results:
    table = read_outcomes(options.outcomes)
    train = table.filter(pc.equal(table[schema.SPLIT], schema.TRAIN))
    test = table.filter(pc.equal(table[schema.SPLIT], schema.TEST))
    models = sorted(set(table[schema.MODEL].to_pylist()))
    tasks = sorted(set(test[schema.TASK].to_pylist()))
    with tempfile.TemporaryDirectory(prefix="routeiq-cascade-") as tmp:
        workdir = Path(tmp)
        say("cascade: fitting the cascade and matrix-factorisation versions on the train split")
        pair = _fit(train, "cascade", workdir / "cascade")
        _fit(train, PROMPT_FAMILY, workdir / PROMPT_FAMILY)
        assert isinstance(pair, CascadeRouter)
        cheap, strong = pair.first_model(), pair.strong_model()
        results = [TaskResult(task, 0) for task in tasks]
        per_task = {t: prompts_of(test.filter(pc.equal(test[schema.TASK], t)), None, options.limit) for t in tasks}
        for result in results:
            result.prompts = len(per_task[result.task])
            result.singles = {m: _single(per_task[result.task], m) for m in (cheap, strong)}
        replay = workdir / "replay.parquet"
        write_outcomes(test, replay)
        setups = {
            CASCADE: ("cascade", "verifier"),
            PROMPT_ONLY: ("cascade", "off"),
            PROMPT_FAMILY: (PROMPT_FAMILY, "off"),
        }
        with running_replay_provider(replay, workdir) as upstream:
            for name, (directory, mode) in setups.items():
                config = demo_gateway.write_config(
                    workdir,
                    upstream,
                    models,
                    str(workdir / directory),
                    cost_weight=0.0,
                    routing={"cascade": mode, "budget_ms": DECISION_BUDGET_MS},
                )
                with demo_gateway.running_gateway(config, workdir) as gateway:
                    for result in results:
                        for weight in options.cost_weights:
                            summary = asyncio.run(
                                drive(
                                    gateway,
                                    per_task[result.task],
                                    api_key=demo_gateway.DEMO_KEY,
                                    cost_weight=weight,
                                    concurrency=1,
                                )
                            )
                            result.points[(name, weight)] = _point(summary)
                            say(f"  {result.task} λ={weight:g} {name}: {summary.render().splitlines()[0]}")
    return Results(results, cheap, strong, options)


def _fit(train: pa.Table, family: str, directory: Path) -> Router[Any]:
    """Fit `family` with its default parameters on `train`, save it into `directory`, return it."""
    cls = family_class(family)
    data = training_set(train)
    featurizer = build(cls.features).fit(list(data.prompts))
    router = cls(cls.Params(), seed=0).fit(data.with_features(featurizer.transform(list(data.prompts))))
    artifact.save(directory, router, featurizer)
    return router


def _single(prompts: Sequence[Prompt], model: str) -> tuple[float, float]:
    known = [p.outcomes[model] for p in prompts if p.outcomes.get(model, (None, None))[0] is not None]
    if not known:
        return float("nan"), float("nan")
    quality = sum(float(q or 0.0) for q, _ in known) / len(known)
    return quality, 1000.0 * sum(float(c or 0.0) for _, c in known) / len(known)


def _point(summary: TrafficSummary) -> Point:
    answered = max(summary.answered, 1)
    return Point(
        quality=summary.quality,
        cost_per_1k=summary.cost_per_1k,
        ms_per_request=1000.0 * summary.seconds / max(summary.sent, 1),
        escalated=summary.escalated / answered,
    )


def render(results: Results) -> str:
    lines = [
        "## Escalation on evidence: the cascade serving mode, live",
        "",
        f"`python -m benchmarks.cascade`: RouterBench test prompts per task through the gateway and the replay "
        "provider, one request at a time. The cascade version's prompt-only choice answers first, and "
        f"{results.strong} is asked when the version's verifier doubts that answer. Quality: recorded quality of the "
        "answer served; cost: both calls of an escalated request; ms: the client's wall time per request (the "
        "replay provider answers at once, so an escalation's extra model call adds no generation time here — in "
        "production it adds the strong model's "
        "latency to the escalated share).",
        "",
        "| task | λ | router | quality | $ per 1k | ms per request | escalated |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results.tasks:
        for weight in results.options.cost_weights:
            for name in (CASCADE, PROMPT_ONLY, PROMPT_FAMILY):
                p = result.points[(name, weight)]
                escalated = f"{100 * p.escalated:.0f}%" if name == CASCADE else ""
                lines.append(
                    f"| {result.task} | {weight:g} | {name} | {p.quality:.3f} | {p.cost_per_1k:.2f} | "
                    f"{p.ms_per_request:.1f} | {escalated} |"
                )
        for model, (quality, cost) in result.singles.items():
            lines.append(f"| {result.task} | | {model} alone | {quality:.3f} | {cost:.2f} | | |")
    counts = ", ".join(f"{r.task} {r.prompts}" for r in results.tasks)
    lines += ["", f"Prompts per task: {counts}. Each router with its default parameters (no tuning).", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cascade", description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--limit", type=int, default=None, help="test prompts per task (default: all)")
    parser.add_argument("--quick", action="store_true", help="40 prompts per task, one λ (a smoke run)")
    parser.add_argument(
        "--into", type=Path, default=None, help="also write the section into this markdown file (docs/benchmarks.md)"
    )
    args = parser.parse_args(argv)
    if not args.outcomes.is_file():
        parser.error(f"{args.outcomes} not found; run `routeiq data import routerbench <data-dir>/routerbench`")
    options = Options(args.outcomes, limit=args.limit)
    if args.quick:
        options = Options(args.outcomes, cost_weights=(COST_WEIGHTS[-1],), limit=40)
    section = render(measure(options))
    print(section)  # noqa: T201
    if args.into is not None:
        replace_section(args.into, section + provenance())


def provenance() -> str:
    """The line that says where a section written into a page generated by `make bench` came from."""
    today = dt.date.today().isoformat()
    return f"Written by `python -m benchmarks.cascade --into` on {today} at commit `{git_commit()[:12]}`.\n"


def replace_section(doc: Path, section: str) -> None:
    """Put `section` (a `## ` heading and its body) in `doc` in place of the section with the same heading, or at
    the end when there is none."""
    heading = section.splitlines()[0]
    text = doc.read_text() if doc.is_file() else ""
    start = text.find(heading + "\n")
    if start < 0:
        doc.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = text.find("\n## ", start + len(heading))
    rest = "\n" + text[end + 1 :] if end >= 0 else ""
    doc.write_text(text[:start] + section.rstrip("\n") + "\n" + rest)


if __name__ == "__main__":
    main()
