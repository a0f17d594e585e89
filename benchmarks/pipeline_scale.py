"""Benchmark "Pipeline scale": realistic span files of several sizes through ingest → label → featurize →
tune (one family) → register, each stage timed, with throughput and how the cost grows with size.

Measures and reports; it asserts nothing. Works in a throw-away directory (warehouse, MLflow and Optuna stores).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import mlflow
import optuna
import pyarrow as pa

from benchmarks.router_fixture import DEFAULT_OUTCOMES
from benchmarks.spans import Replay, load_outcomes
from pipelines import featurize
from pipelines.ingest import ingest, loop_section
from pipelines.label import LabelParams, label
from pipelines.loop_params import LoopParams
from pipelines.outcomes import write_outcomes
from pipelines.provenance import git_commit
from pipelines.register import register
from pipelines.sources import SourceFormatError
from pipelines.tune import TuneParams, tune_family
from registry import tracking

PROJECT: Final = Path(__file__).resolve().parents[1]
DEFAULT_SIZES: Final = (10_000, 100_000, 1_000_000)
WARM_UP_SPANS: Final = 1_000
"""An untimed run through every stage first, so the smallest size does not pay for one-time imports."""
DEFAULT_BUDGET_S: Final = 240.0
"""A size (or its training stages) whose extrapolated time would pass this is reported as not run."""
DATA_STAGES: Final = ("ingest", "label")
TRAIN_STAGES: Final = ("featurize", "tune", "register")
TO_ROUTER: Final = DATA_STAGES + TRAIN_STAGES
"""From span files on disk to a registered router version; generating the files is timed apart."""
INGEST_GOAL: Final = 200_000.0
"""Spans per second."""
ROUTER_GOAL: Final = (100_000, 600.0)
"""100k spans → a registered router within 10 minutes."""
LINEAR_SLACK: Final = 1.25
"""Growth factors (time ratio / size ratio) up to this count as about linear."""
LOOP_FILES: Final = {
    "outcomes": "outcomes.parquet",
    "features": "features",
    "routers": "routers",
    "evaluation": "evaluation.json",
    "registered": "registered.json",
}
"""`loop` keys of params.yaml and where each goes in a size's throw-away directory."""
REGISTRY_ENV: Final = "MLFLOW_REGISTRY_URI"
T = TypeVar("T")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Stage:
    """One stage at one size: seconds, and how many `unit`s it processed."""

    name: str
    seconds: float
    items: int
    unit: str

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class SizeRun:
    """Everything measured at one size; `skipped` says what was not run and why."""

    spans: int
    requests: int = 0
    feedback: int = 0
    """Request and feedback spans generated."""
    ingested: tuple[int, int] = (0, 0)
    """Request and feedback rows the ingest stage added."""
    megabytes: float = 0.0
    stages: tuple[Stage, ...] = ()
    outcome_rows: int = 0
    prompts: int = 0
    version: int | None = None
    """The router version registered at this size."""
    skipped: str | None = None

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def seconds(self, names: Sequence[str]) -> float | None:
        """Total seconds of `names`; None unless every one of them ran."""
        found = [self.stage(n) for n in names]
        return sum(s.seconds for s in found if s is not None) if all(found) else None


@dataclass(frozen=True)
class ScaleResult:
    """All sizes, smallest first, and how they were run."""

    runs: tuple[SizeRun, ...]
    family: str
    trials: int
    budget_seconds: float
    setup_seconds: float
    """Loading the outcome table, building the span templates and the warm-up run, once, untimed."""
    models: int
    """Models per prompt in the replayed data: the logging policy picks one with probability 1/models."""
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)


def _stderr(line: str) -> None:
    print(f"pipeline scale: {line}", file=sys.stderr, flush=True)  # noqa: T201


def _timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    return work(), time.perf_counter() - started


@contextlib.contextmanager
def throwaway_mlflow(root: Path) -> Iterator[str]:
    """MLflow tracking and registry in a sqlite store under `root` (artifacts too) until the context exits."""
    # MLflow keeps both URIs in module globals and mirrors them into the environment; all four are put back,
    # so the rest of the process (later tests, say) sees MLflow exactly as it was.
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    saved_env = {name: os.environ.get(name) for name in (tracking.TRACKING_ENV, REGISTRY_ENV)}
    saved_registry = registry_state._registry_uri
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ[tracking.TRACKING_ENV] = uri
    try:
        with tracking_state._use_tracking_uri(uri):
            mlflow.set_registry_uri(uri)
            mlflow.create_experiment(tracking.EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
            tracking.configure()
            yield uri
    finally:
        registry_state._registry_uri = saved_registry
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def loop_for(root: Path, family: str) -> tuple[LoopParams, LabelParams]:
    """The project's `loop` section (split, λ) with every path under `root`, one family, no bootstrap tables."""
    section = loop_section(PROJECT / "params.yaml") | {"bootstrap": [], "families": [family]}
    section |= {key: root / name for key, name in LOOP_FILES.items()}
    return LoopParams.model_validate(section), LabelParams.model_validate(section)


def _data_stages(replay: Replay, size: int, root: Path, family: str, progress: Progress) -> SizeRun:
    """Generate, ingest (then drop the span files), label: the stages every size runs."""
    traces, warehouse = root / "traces", root / "warehouse.duckdb"
    files = replay.write(traces, size)
    progress(f"{size:,} spans: generated {files.bytes / 1e6:,.0f} MB in {files.seconds:.1f} s")
    stats, ingest_s = _timed(lambda: ingest(traces, warehouse))
    progress(f"{size:,} spans: ingest {ingest_s:.1f} s ({stats.spans / ingest_s:,.0f} spans/s)")
    shutil.rmtree(traces)
    loop, params = loop_for(root, family)
    (table, labelled), label_s = _timed(lambda: label(warehouse, params))
    write_s = _timed(lambda: write_outcomes(table, loop.outcomes))[1]
    progress(f"{size:,} spans: label {label_s + write_s:.1f} s ({labelled.rows:,} outcome rows)")
    stages = (
        Stage("generate", files.seconds, files.spans, "spans"),
        Stage("ingest", ingest_s, stats.spans, "spans"),
        Stage("label", label_s + write_s, labelled.requests, "requests"),
    )
    return SizeRun(
        spans=size,
        requests=files.requests,
        feedback=files.feedback,
        ingested=(stats.requests, stats.feedback),
        megabytes=files.bytes / 1e6,
        stages=stages,
        outcome_rows=labelled.rows,
        prompts=labelled.prompts,
    )


def _train_stages(run: SizeRun, root: Path, family: str, trials: int, progress: Progress) -> SizeRun:
    """Featurize, tune `family` for `trials` Optuna trials, register: in the active throw-away MLflow store."""
    loop, _ = loop_for(root, family)
    _, featurize_s = _timed(lambda: featurize.run(loop))
    tune = TuneParams(seed=0, trials=trials, custom_path=None, storage=f"sqlite:///{root / 'optuna.db'}")
    _, tune_s = _timed(lambda: tune_family(family, loop, tune, lambda _: None))
    registered, register_s = _timed(lambda: register(loop, git_commit(PROJECT)))
    progress(
        f"{run.spans:,} spans: featurize {featurize_s:.1f} s, tune {tune_s:.1f} s, register {register_s:.1f} s "
        f"→ version {registered[family]}"
    )
    trained = (
        Stage("featurize", featurize_s, run.prompts, "prompts"),
        Stage("tune", tune_s, run.outcome_rows, "rows"),
        Stage("register", register_s, 1, "versions"),
    )
    return dataclasses.replace(run, stages=run.stages + trained, version=int(registered[family]))


def _extrapolate(runs: Sequence[SizeRun], size: int, names: Sequence[str]) -> float:
    """Seconds `names` would take at `size`, linear in size from the largest run that had them all."""
    for run in reversed(runs):
        seconds = run.seconds(names)
        if seconds is not None:
            return seconds * size / run.spans
    return 0.0


def _plan(runs: Sequence[SizeRun], size: int, left: float, train: bool) -> tuple[bool, bool, str | None]:
    """Whether to run the data stages and the training stages at `size` within `left` seconds, and why not."""
    data = _extrapolate(runs, size, ("generate", *DATA_STAGES))
    if data > left:
        return False, False, f"not run: extrapolated {data:.0f} s for generate+ingest+label, {left:.0f} s left"
    trained = _extrapolate(runs, size, TRAIN_STAGES)
    if train and data + trained > left:
        return True, False, f"featurize/tune/register not run: extrapolated {data + trained:.0f} s, {left:.0f} s left"
    return True, train, None if train else "featurize/tune/register not run: above --train-up-to"


def measure(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    table: pa.Table | None = None,
    outcomes: Path | None = DEFAULT_OUTCOMES,
    data_dir: Path | None = None,
    family: str = "knn",
    trials: int = 1,
    train_up_to: int | None = None,
    budget_seconds: float = DEFAULT_BUDGET_S,
    warm_up: int = WARM_UP_SPANS,
    workdir: Path | None = None,
    progress: Progress = _stderr,
) -> ScaleResult:
    """Run every size (smallest first) from empty stores; sizes or stages that would pass the budget are
    reported as not run rather than dropped. Replays `table`, else the outcomes file, else `data_dir`."""
    started = time.perf_counter()
    recorded = load_outcomes(outcomes, data_dir) if table is None else table
    replay = Replay.of(recorded, loop_for(PROJECT, family)[0].cost_weight)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: list[SizeRun] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-scale-", dir=workdir) as tmp, throwaway_mlflow(Path(tmp)):
        if warm_up:
            _run_size(replay, warm_up, Path(tmp) / "warm-up", (family, trials, True), lambda _: None)
        setup = time.perf_counter() - started
        progress(f"{len(replay.prompts):,} prompts templated and one {warm_up:,}-span warm-up run in {setup:.1f} s")
        for size in sorted(sizes):
            left = budget_seconds - (time.perf_counter() - started)
            run_data, run_train, why = _plan(runs, size, left, train_up_to is None or size <= train_up_to)
            if not run_data:
                progress(f"{size:,} spans: {why}")
                runs.append(SizeRun(spans=size, skipped=why))
                continue
            run = _run_size(replay, size, Path(tmp) / str(size), (family, trials, run_train), progress)
            runs.append(dataclasses.replace(run, skipped=why))
    return ScaleResult(tuple(runs), family, trials, budget_seconds, setup, max(map(len, replay.prompts)))


def _run_size(replay: Replay, size: int, root: Path, plan: tuple[str, int, bool], progress: Progress) -> SizeRun:
    """The data stages, then (when `plan` = (family, trials, train) says so) the training stages; `root` is
    removed after."""
    family, trials, train = plan
    try:
        run = _data_stages(replay, size, root, family, progress)
        return _train_stages(run, root, family, trials, progress) if train else run
    finally:
        shutil.rmtree(root, ignore_errors=True)


def render(result: ScaleResult) -> str:
    """The `## Pipeline scale` section of the benchmark report: what was measured, a table, goals vs measured."""
    header = "| spans | requests / feedback | span files | generate | ingest | label | featurize | tune | register "
    lines = ["## Pipeline scale", "", _intro(result), "", header + "| spans → registered router |"]
    lines += ["|" + "---:|" * 10, *(_row(run) for run in result.runs), "", *_growth(result.runs), ""]
    lines += ["Goals against what was measured:", "", *_goals(result.runs), *_notes(result.runs)]
    return "\n".join(lines) + "\n"


def _intro(result: ScaleResult) -> str:
    trials = f"{result.trials} Optuna trial{'s' if result.trials != 1 else ''}"
    return (
        "Gateway span files replayed from recorded RouterBench outcomes (prompts in turn, each answered by a model "
        f"drawn uniformly with propensity 1/{result.models}, prompt text captured, then a feedback span with the "
        "recorded quality; spans = request + feedback spans), written in the exporter's OTLP-JSON format, then "
        "taken through the loop's stage functions as `dvc repro` runs them (DVC's own overhead not included): "
        f"ingest into an empty DuckDB warehouse, label, featurize, tune `{result.family}` ({trials}) and register "
        "in a throw-away sqlite MLflow store. Each cell is seconds and throughput; generating the files is timed "
        f"apart. {result.cpus} CPU cores; setup (templating the recorded answers, one warm-up run through every "
        f"stage) {result.setup_seconds:.1f} s; budget {result.budget_seconds:.0f} s for all sizes."
    )


def _cell(run: SizeRun, name: str) -> str:
    stage = run.stage(name)
    if stage is None:
        return "—"
    if stage.unit in ("spans", "requests"):
        return f"{stage.seconds:.2f} s · {stage.rate:,.0f} {stage.unit}/s"
    if stage.unit == "prompts":
        return f"{stage.seconds:.2f} s · {stage.items:,} prompts"
    return f"{stage.seconds:.2f} s"


def _row(run: SizeRun) -> str:
    if not run.stages:
        return f"| {run.spans:,} | {run.skipped} |" + " |" * 8
    total = run.seconds(TO_ROUTER)
    cells = [f"{run.spans:,}", f"{run.requests:,} / {run.feedback:,}", f"{run.megabytes:,.0f} MB"]
    cells += [_cell(run, name) for name in ("generate", *TO_ROUTER)]
    cells.append(f"**{total:.1f} s**" if total is not None else f"— ({run.skipped})")
    return "| " + " | ".join(cells) + " |"


def growth(small: SizeRun, large: SizeRun, names: Sequence[str]) -> float | None:
    """(time ratio) / (size ratio) of `names` between two sizes: 1 is linear, below 1 sub-linear."""
    before, after = small.seconds(names), large.seconds(names)
    if not before or after is None:
        return None
    return (after / before) / (large.spans / small.spans)


def _pairs(runs: Sequence[SizeRun]) -> list[tuple[SizeRun, SizeRun]]:
    ran = [run for run in runs if run.stages]
    return list(itertools.pairwise(ran))


def _growth(runs: Sequence[SizeRun]) -> list[str]:
    columns = [(name,) for name in TO_ROUTER] + [TO_ROUTER]
    lines = [
        "Growth factor between sizes = time ratio / size ratio (1 = linear, below 1 = sub-linear):",
        "",
        "| sizes | " + " | ".join(TO_ROUTER) + " | spans → registered router |",
        "|---|" + "---:|" * len(columns),
    ]
    for small, large in _pairs(runs):
        factors = [growth(small, large, names) for names in columns]
        shown = " | ".join("—" if f is None else f"{f:.2f}" for f in factors)
        lines.append(f"| {small.spans:,} → {large.spans:,} | {shown} |")
    return lines


def _goals(runs: Sequence[SizeRun]) -> list[str]:
    return [_ingest_goal(runs), _router_goal(runs), _linear_goal(runs)]


def _ingest_goal(runs: Sequence[SizeRun]) -> str:
    stages = [(run.spans, run.stage("ingest")) for run in runs]
    measured = [(size, stage) for size, stage in stages if stage is not None]
    if not measured:
        return f"- Ingest ≥ {INGEST_GOAL:,.0f} spans/s: not measured."
    size, stage = measured[-1]
    verdict = "met" if stage.rate >= INGEST_GOAL else f"missed: {INGEST_GOAL / stage.rate:.1f}× too slow"
    return f"- Ingest ≥ {INGEST_GOAL:,.0f} spans/s: {stage.rate:,.0f} spans/s at {size:,} spans — **{verdict}**."


def _router_goal(runs: Sequence[SizeRun]) -> str:
    size, limit = ROUTER_GOAL
    goal = f"- {size:,} spans → registered router ≤ {limit / 60:.0f} min"
    run = next((r for r in runs if r.spans == size), None)
    total = run.seconds(TO_ROUTER) if run is not None else None
    if total is None:
        return f"{goal}: not measured (no {size:,}-span size ran every stage)."
    verdict = f"met, {limit / total:.0f}× headroom" if total <= limit else f"missed by {total - limit:.0f} s"
    return f"{goal}: {total:.1f} s — **{verdict}**."


def _linear_goal(runs: Sequence[SizeRun]) -> str:
    """Judged on the whole path (spans → registered router, or ingest + label where training did not run at
    both sizes), naming the steepest single stage too."""
    goal = f"- Cost grows about linearly (growth factor ≤ {LINEAR_SLACK})"
    whole = [(growth(s, b, TO_ROUTER) or growth(s, b, DATA_STAGES), s.spans, b.spans) for s, b in _pairs(runs)]
    stages = [(growth(s, b, (n,)), f"{n} {s.spans:,} → {b.spans:,}") for s, b in _pairs(runs) for n in TO_ROUTER]
    measured = [f"{f:.2f} from {small:,} to {large:,} spans" for f, small, large in whole if f is not None]
    if not measured:
        return f"{goal}: not measured (needs two sizes)."
    worst = max(f or 0.0 for f, _, _ in whole)
    steepest, where = max(((f, w) for f, w in stages if f is not None), key=lambda found: found[0])
    verdict = "met" if worst <= LINEAR_SLACK else f"missed: {worst:.2f}, {worst / LINEAR_SLACK:.2f}× over"
    return f"{goal}: {'; '.join(measured)} — **{verdict}**. Steepest single stage: {where}, {steepest:.2f}."


def _notes(runs: Sequence[SizeRun]) -> list[str]:
    notes = ["", *(f"- {run.spans:,} spans: {run.skipped}." for run in runs if run.skipped)]
    trained = [run for run in runs if run.seconds(TO_ROUTER)]
    if trained:
        run = trained[-1]
        total = run.seconds(TO_ROUTER) or 1.0
        slowest = max((run.stage(n) for n in TO_ROUTER), key=lambda s: s.seconds if s else 0.0)
        if slowest is not None:
            share = slowest.seconds / total
            notes.append(f"- Bottleneck at {run.spans:,} spans: {slowest.name}, {share:.0%} of the {total:.1f} s.")
    notes += _ingest_note(runs)
    distinct = max((run.prompts for run in runs), default=0)
    notes.append(
        f"- Featurize and tune work per distinct prompt (at most {distinct:,} here: the replayed data repeats), so "
        "past a few thousand requests their cost grows only with reading and pivoting the outcome rows; traffic "
        "of mostly new prompts would grow them with the number of distinct prompts. `evaluate` (reads each "
        "family's metrics, draws the frontier) is not timed: its cost does not depend on the number of spans."
    )
    return notes


def _ingest_note(runs: Sequence[SizeRun]) -> list[str]:
    """Ingest in bytes: what the goal asks of the JSON reader and the warehouse, from the largest run."""
    ingested = [run for run in runs if run.stage("ingest") and run.megabytes]
    if not ingested:
        return []
    run = ingested[-1]
    stage = run.stage("ingest")
    assert stage is not None
    per_span = run.megabytes * 1e6 / run.spans
    rate = run.megabytes / stage.seconds
    return [
        f"- Ingest at {run.spans:,} spans read {rate:,.0f} MB/s of OTLP-JSON ({per_span / 1e3:.1f} KB per span with "
        f"the prompt text captured); 200,000 spans/s at that size is {200_000 * per_span / 1e6:,.0f} MB/s. Each "
        "chunk is parsed by pyarrow's JSON reader, checked and pivoted column-wise, then inserted into DuckDB "
        "tables keyed by span id (the keys make re-ingestion idempotent): parsing and the keyed insert take most "
        "of the time."
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="span counts, comma-separated")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("ROUTEIQ_DATA_DIR"))
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--family", default="knn")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--train-up-to", type=int, default=None, help="largest size to featurize/tune/register")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for all sizes")
    parser.add_argument("--workdir", type=Path, default=None, help="where the throw-away directory goes")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated span counts, got {args.sizes!r}")
    if not sizes or min(sizes) <= 0:
        parser.error(f"--sizes must be positive span counts, got {args.sizes!r}")
    try:
        table = load_outcomes(args.outcomes, args.data_dir)
    except (FileNotFoundError, SourceFormatError) as error:
        parser.error(str(error))
    print(render(measure(sizes, table=table, **_options(args))))  # noqa: T201


def _options(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("family", "trials", "train_up_to", "workdir")
    return {key: getattr(args, key) for key in keys} | {"budget_seconds": args.budget}


if __name__ == "__main__":
    main()
