"""The retraining watcher of `routeiq loop --watch`: at every check, count the feedback that arrived since the last
run, decide whether the loop is due (enough new feedback, or the schedule elapsed with some), run it, and keep its
state in a small JSON file, so a restart neither retrains at once nor forgets what is pending.

Decides, records and reports; the run itself (DVC, the promotion gate) is handed to it (`pipelines.loop_run`).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Final

import duckdb
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pipelines.durations import format_duration, parse_duration, schedule
from pipelines.feedback_scan import FeedbackScan, ingest_progress, scan_feedback
from pipelines.loop_params import PARAMS_FILE, LoopPaths, read_section
from pipelines.loop_run import Promotion
from pipelines.workspace import PipelineError

WATCH_KEY: Final = "watch"
"""The subsection of params.yaml's `loop` section this module reads."""
PAUSE_STEP_S: Final = 0.5
"""A pause between checks is slept in steps this long, so a stop request ends it soon."""
STATE_VERSION: Final = 1

Echo = Callable[[str], None]
Run = Callable[[Echo], Promotion]
"""One run of the loop, writing its output lines to the given sink; raises when the run fails."""


class WatchParams(BaseModel):
    """`loop.watch` of params.yaml: when the watcher runs the loop, how often it looks, where it keeps its state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_feedback: int = Field(default=1000, ge=1)
    """Run as soon as this much new feedback has arrived since the last run."""
    every: Annotated[float | None, BeforeValidator(schedule)] = 6 * 3600.0
    """Also run when this long has passed since the last run and any new feedback arrived (None: no schedule)."""
    interval: Annotated[float, BeforeValidator(parse_duration)] = 60.0
    """Seconds between checks."""
    state: Path = Path("data/loop/watch.json")
    log: Path = Path("data/loop/watch.log")
    """The output of the last run (every stage's lines), for when a run fails."""


def watch_params(params_file: Path = PARAMS_FILE, **overrides: object) -> WatchParams:
    """`loop.watch` of `params_file`, with the given keys replaced (None: keep the file's value)."""
    section = read_section(params_file).get(WATCH_KEY) or {}
    if not isinstance(section, dict):
        raise ValueError(f"{params_file}: loop.{WATCH_KEY} must be a mapping, got {section!r}")
    return WatchParams.model_validate(section | {k: v for k, v in overrides.items() if v is not None})


def describe(loop: LoopPaths, params: WatchParams) -> str:
    """The watcher's first line: what it watches and when it runs."""
    schedule = f"every {format_duration(params.every)}" if params.every else "no schedule"
    return (
        f"watching {loop.traces}: run at {params.min_feedback} new feedback ({schedule}), checking every "
        f"{format_duration(params.interval)}; Ctrl-C stops between runs"
    )


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str


def decide(new_feedback: int, since_last_run: float, min_feedback: int, every: float | None) -> Decision:
    """Whether to run the loop now: never without new feedback; when `new_feedback` reaches `min_feedback`; or
    when the schedule `every` has elapsed (`since_last_run` seconds since the last run) with any new feedback."""
    if new_feedback <= 0:
        return Decision(False, "nothing new since the last run: wait")
    if new_feedback >= min_feedback:
        return Decision(True, f"{new_feedback} new ≥ {min_feedback} (min feedback): run")
    if every is not None and since_last_run >= every:
        elapsed = f"{format_duration(since_last_run)} since the last run ≥ every {format_duration(every)}"
        return Decision(True, f"{new_feedback} new, {elapsed}: run")
    due = f", or by schedule in {format_duration(every - since_last_run)}" if every is not None else ""
    return Decision(False, f"{new_feedback} new < {min_feedback} (min feedback){due}: wait")


@dataclass
class WatchState:
    """What the watcher persists between checks and restarts (`loop.watch.state`)."""

    since: float
    """When the schedule counts from: the last successful run, or when the watcher first started."""
    offsets: dict[str, int] = field(default_factory=dict)
    """Span file → bytes counted; after a successful run, how far its `ingest` read."""
    new_feedback: int = 0
    """Feedback counted since the last successful run: what the next run will learn from."""
    feedback_seen: int = 0
    """Feedback counted since the watcher first started."""
    runs: int = 0
    failed_runs: int = 0
    last_run_at: float | None = None
    last_result: str = ""
    version: int = STATE_VERSION

    @classmethod
    def load(cls, path: Path, warehouse: Path, now: float) -> WatchState:
        """The saved state; without one, a fresh state whose offsets are the ingest's progress, so feedback the
        loop has already ingested is not new."""
        if not path.is_file():
            return cls(since=now, offsets=ingest_progress(warehouse))
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"watch state {path} is unreadable ({exc}); delete it to start afresh") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.partial")
        partial.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        partial.replace(path)  # atomic: a crash leaves the old state or the new one, never half of one

    def counted(self, scan: FeedbackScan) -> None:
        self.offsets = scan.offsets
        self.new_feedback += scan.feedback
        self.feedback_seen += scan.feedback

    def ran(self, now: float, promotion: Promotion, ingested: dict[str, int]) -> None:
        """A run succeeded: what it ingested is no longer new, and the schedule counts from now."""
        self.runs += 1
        self.since = self.last_run_at = now
        self.new_feedback = 0
        self.offsets = ingested
        self.last_result = promotion.verdict


class Stop:
    """Set by a signal (or a test): the watcher stops before its next check."""

    def __init__(self) -> None:
        self.requested: str | None = None


@contextmanager
def stopping_on_signals(stop: Stop) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (a run in progress finishes); a second one acts as it would without us."""
    signals = (signal.SIGINT, signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.requested = signal.Signals(signum).name
        for number, previous in saved.items():
            signal.signal(number, previous)

    saved = {number: signal.signal(number, handler) for number in signals}
    try:
        yield
    finally:
        for number, previous in saved.items():
            signal.signal(number, previous)


@dataclass(frozen=True)
class Watcher:
    """Everything one watch needs: the project, its loop paths and watch parameters, how to run the loop, where to
    report, and (for tests) the clock and the sleep."""

    root: Path
    loop: LoopPaths
    params: WatchParams
    run: Run
    echo: Echo
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def path(self, relative: Path) -> Path:
        return self.root / relative


def watch(watcher: Watcher, stop: Stop, max_runs: int | None = None) -> WatchState:
    """Check, decide, maybe run, pause; until `stop` is requested or `max_runs` runs (failed ones count) are done."""
    params, state_file = watcher.params, watcher.path(watcher.params.state)
    state = WatchState.load(state_file, watcher.path(watcher.loop.warehouse), watcher.clock())
    attempts = 0
    while stop.requested is None:
        decision = _check(watcher, state)
        state.save(state_file)
        if decision.run:
            attempts += 1
            _run(watcher, state, attempts)
            state.save(state_file)
            if max_runs is not None and attempts >= max_runs:
                _say(watcher, f"stopped after {attempts} run{'s' * (attempts != 1)} (max runs); state in {state_file}")
                return state
        _pause(params.interval, stop, watcher.sleep)
    _say(watcher, f"stopped by {stop.requested} after {attempts} run{'s' * (attempts != 1)}; state in {state_file}")
    return state


def _check(watcher: Watcher, state: WatchState) -> Decision:
    traces = watcher.path(watcher.loop.traces)
    try:
        scan = scan_feedback(traces, state.offsets)
    except OSError as exc:
        _say(watcher, f"check: cannot read {traces} ({exc}): wait")
        return Decision(False, str(exc))
    state.counted(scan)
    decision = decide(
        state.new_feedback, watcher.clock() - state.since, watcher.params.min_feedback, watcher.params.every
    )
    files = f" in {scan.files_read} file{'s' * (scan.files_read != 1)}" if scan.feedback else ""
    _say(watcher, f"check: +{scan.feedback} feedback{files}; {decision.reason}")
    return decision


def _run(watcher: Watcher, state: WatchState, number: int) -> None:
    started, log = watcher.clock(), watcher.path(watcher.params.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        promotion = _logged(watcher.run, log)
    except Exception as exc:  # a daemon reports a failed run and retries it; it never dies of one
        state.failed_runs += 1
        state.last_result = f"failed: {failure_line(exc)}"
        _say(
            watcher,
            f"run {number} failed after {format_duration(watcher.clock() - started)}: {failure_line(exc)} "
            f"(output in {log}); {state.new_feedback} new feedback stay pending, retried at the next trigger",
        )
        return
    state.ran(watcher.clock(), promotion, _ingested(watcher, state))
    kept = "; Production unchanged" if promotion.version is None else ""
    _say(watcher, f"run {number} done in {format_duration(watcher.clock() - started)}: {promotion.verdict}{kept}")


def _logged(run: Run, log: Path) -> Promotion:
    """`run`, its output lines written to `log` (the last run's only)."""
    with log.open("w") as sink:

        def write(line: str) -> None:
            sink.write(f"{line}\n")

        return run(write)


def _ingested(watcher: Watcher, state: WatchState) -> dict[str, int]:
    """How far the run's `ingest` read each file: feedback past it is what is new now. If the warehouse cannot be
    read (another writer holds it), what this watcher counted stands in."""
    try:
        return ingest_progress(watcher.path(watcher.loop.warehouse))
    except duckdb.Error:
        return state.offsets


def failure_line(exc: BaseException) -> str:
    """One line for a failed run: for a `dvc` failure, the command and DVC's own last error line; else the error's
    type and message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, PipelineError) and len(lines) > 1:
        errors = [line for line in lines[1:] if line.startswith("ERROR")]
        return f"{lines[0].rstrip(':')}: {(errors or lines)[-1]}"
    return f"{type(exc).__name__}: {'; '.join(lines)}"


def _pause(seconds: float, stop: Stop, sleep: Callable[[float], None]) -> None:
    left = seconds
    while left > 0 and stop.requested is None:
        step = min(left, PAUSE_STEP_S)
        sleep(step)
        left -= step


def _say(watcher: Watcher, text: str) -> None:
    stamp = dt.datetime.fromtimestamp(watcher.clock()).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    watcher.echo(f"[{stamp}] {text}")


def record_run(root: Path, loop: LoopPaths, params: WatchParams, promotion: Promotion, now: float) -> None:
    """A run made outside the watcher (`routeiq loop`): the watcher's state learns of it, so a watcher started
    later does not count the feedback that run learned from as new."""
    path = root / params.state
    state = WatchState.load(path, root / loop.warehouse, now)
    state.ran(now, promotion, ingest_progress(root / loop.warehouse))
    state.save(path)
