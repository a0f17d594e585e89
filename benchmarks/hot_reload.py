"""Benchmark: a promotion in the registry while the gateway serves a steady request rate. How long from the
promotion to the first answer by the new version, and how many requests failed meanwhile.

Two routers (the `strongest` and `cheapest` baselines, so the switch shows in the chosen model too) are
registered in a throwaway MLflow store; the gateway follows `models:/routeiq-router/Production`.
`python -m benchmarks.hot_reload`; measures and reports, asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks.load import Answer, paced
from benchmarks.router_fixture import (
    DEFAULT_OUTCOMES,
    fit_and_save,
    promote_forced,
    register,
    test_prompts,
    tracking_store,
)
from benchmarks.targets import gateway_config, routeiq_gateway, upstream_stub
from pipelines.demo_steps import say

VERSION_HEADER: Final = "x-routeiq-router-version"
GOAL_SLACK_S: Final = 2.0


@dataclass(frozen=True)
class Options:
    outcomes: Path
    rate: float = 200.0
    seconds: float = 12.0
    promote_at: float = 4.0
    poll_seconds: float = 1.0


@dataclass(frozen=True)
class Result:
    rate: float
    poll_seconds: float
    requests: int
    failures: int
    old_version: str
    new_version: str
    promoted_at: float
    """Seconds from the start of the load when the promotion call began."""
    first_new_at: float | None
    """When the first answer from the new version arrived."""
    old_after_new: int
    """Answers from the old version that arrived after the first one from the new version (in-flight ones)."""

    @property
    def switch_seconds(self) -> float | None:
        return None if self.first_new_at is None else self.first_new_at - self.promoted_at


def measure(options: Options) -> Result:
    with tempfile.TemporaryDirectory(prefix="routeiq-reload-") as tmp, tracking_store(Path(tmp)):
        workdir = Path(tmp)
        say("registering two routers (strongest, cheapest) in a throwaway MLflow store")
        strongest = fit_and_save(options.outcomes, "strongest", workdir / "strongest")
        old = register(strongest)
        new = register(fit_and_save(options.outcomes, "cheapest", workdir / "cheapest"))
        promote_forced(old, "hot-reload benchmark")
        models = list(strongest.models)
        prompts = test_prompts(options.outcomes, 200)
        with upstream_stub(workdir, models) as stub:
            routing = {"reference": "models:/routeiq-router/Production", "poll_interval_seconds": options.poll_seconds}
            config = gateway_config(workdir, stub.url, models, "", {"routing": routing})
            with routeiq_gateway(config, workdir) as gateway:
                promoted: list[float] = []
                began = time.perf_counter()

                def tick(elapsed: float) -> None:
                    if elapsed >= options.promote_at and not promoted:
                        # From the call's start: the poller may see the new stage before the call has returned.
                        promoted.append(time.perf_counter() - began)
                        promote_forced(new, "hot-reload benchmark")

                say(
                    f"{options.rate:.0f} requests/s for {options.seconds:.0f} s; "
                    f"promoting v{new} after {options.promote_at:.0f} s"
                )
                answers = paced(gateway, prompts, options.rate, options.seconds, on_tick=tick)
    return _result(options, answers, str(old), str(new), promoted[0] if promoted else float("nan"))


def _result(options: Options, answers: list[Answer], old: str, new: str, promoted_at: float) -> Result:
    by_arrival = sorted(answers, key=lambda a: a.received)
    first_new = next((a.received for a in by_arrival if a.headers.get(VERSION_HEADER) == new), None)
    late_old = 0
    if first_new is not None:
        late_old = sum(1 for a in by_arrival if a.received > first_new and a.headers.get(VERSION_HEADER) == old)
    failures = sum(1 for a in answers if a.status != 200)
    return Result(
        options.rate, options.poll_seconds, len(answers), failures, old, new, promoted_at, first_new, late_old
    )


def render(result: Result) -> str:
    switch = result.switch_seconds
    goal = result.poll_seconds + GOAL_SLACK_S
    if switch is None:
        verdict = "missed: no answer came from the new version"
    else:
        verdict = "met" if switch <= goal else f"missed by {switch - goal:.2f} s"
    failures = "met" if result.failures == 0 else f"missed: {result.failures} failed"
    switched = "never" if switch is None else f"{switch:.2f} s"
    lines = [
        "## Hot reload under load",
        "",
        f"The gateway follows `models:/routeiq-router/Production` (poll every {result.poll_seconds:g} s) while "
        f"{result.rate:.0f} requests/s arrive at a steady pace (open loop). After a few seconds `strongest` "
        f"(v{result.old_version}) is replaced as Production by `cheapest` (v{result.new_version}) through the "
        "registry API, as `routeiq promote` does. Switch time = from the start of the promotion call to the first "
        "answer carrying the new version in `x-routeiq-router-version`.",
        "",
        "| requests | failed | promotion → first answer by the new version | old-version answers after it | goal |",
        "|---|---|---|---|---|",
        f"| {result.requests} | {result.failures} | {switched} | {result.old_after_new} "
        f"| ≤ poll + 2 s = {goal:g} s: {verdict}; 0 failures: {failures} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--rate", type=float, default=Options.rate)
    parser.add_argument("--seconds", type=float, default=Options.seconds)
    args = parser.parse_args(argv)
    print(render(measure(Options(args.outcomes, rate=args.rate, seconds=args.seconds))))  # noqa: T201


if __name__ == "__main__":
    main()
