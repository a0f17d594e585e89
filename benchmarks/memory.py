"""Benchmark: resident memory of one gateway process with a learned router loaded, idle and under a steady
request rate, and how much it grows over a bounded soak.

`python -m benchmarks.memory --soak-seconds 600` runs the full ten-minute soak; `make bench` runs a shorter
one (the report says how long). Measures and reports, asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks.load import paced
from benchmarks.router_fixture import DEFAULT_OUTCOMES, fit_and_save, test_prompts
from benchmarks.targets import gateway_config, routeiq_gateway, rss_mb, upstream_stub
from pipelines.demo_steps import say

FAMILY: Final = "knn"
GOAL_MB: Final = 300.0
GOAL_GROWTH: Final = 0.05
WARM_SHARE: Final = 0.2
"""The first part of the soak warms caches and pools; growth is measured from its end to the end of the soak."""


@dataclass(frozen=True)
class Options:
    outcomes: Path
    rate: float = 200.0
    soak_seconds: float = 60.0


@dataclass(frozen=True)
class Result:
    family: str
    rate: float
    soak_seconds: float
    idle_mb: float
    samples: list[tuple[float, float]]
    """(seconds into the soak, RSS MiB), about one a second."""
    requests: int
    failures: int

    @property
    def peak_mb(self) -> float:
        return max(mb for _, mb in self.samples)

    @property
    def warm_mb(self) -> float:
        """RSS at the end of the warm-up share of the soak."""
        cut = self.soak_seconds * WARM_SHARE
        return next((mb for t, mb in self.samples if t >= cut), self.samples[0][1])

    @property
    def end_mb(self) -> float:
        tail = [mb for _, mb in self.samples[-5:]]
        return sum(tail) / len(tail)

    @property
    def growth(self) -> float:
        return self.end_mb / self.warm_mb - 1.0


def measure(options: Options) -> Result:
    with tempfile.TemporaryDirectory(prefix="routeiq-memory-") as tmp:
        workdir = Path(tmp)
        router = fit_and_save(options.outcomes, FAMILY, workdir / "router")
        prompts = test_prompts(options.outcomes, 500)
        with upstream_stub(workdir, list(router.models)) as stub:
            config = gateway_config(workdir, stub.url, list(router.models), str(router.directory))
            with routeiq_gateway(config, workdir) as gateway:
                time.sleep(2.0)
                idle = rss_mb(gateway.pid)
                samples: list[tuple[float, float]] = []
                say(f"soak: {options.rate:.0f} requests/s for {options.soak_seconds:.0f} s, RSS sampled each second")
                answers = paced(
                    gateway,
                    prompts,
                    options.rate,
                    options.soak_seconds,
                    on_tick=lambda elapsed: samples.append((elapsed, rss_mb(gateway.pid))),
                )
                samples.append((options.soak_seconds, rss_mb(gateway.pid)))
    failures = sum(1 for a in answers if a.status != 200)
    return Result(FAMILY, options.rate, options.soak_seconds, idle, sorted(samples), len(answers), failures)


def render(result: Result) -> str:
    peak_verdict = "met" if result.peak_mb <= GOAL_MB else f"missed by {result.peak_mb - GOAL_MB:.0f} MiB"
    growth_verdict = "met" if result.growth < GOAL_GROWTH else f"missed: {result.growth:.1%}"
    lines = [
        "## Memory",
        "",
        f"RSS of one `routeiq serve` process (its children included) with the learned `{result.family}` router "
        "loaded and telemetry on: idle two seconds after it is ready, then under a steady "
        f"{result.rate:.0f} requests/s for {result.soak_seconds:.0f} s ({result.requests} requests, "
        f"{result.failures} failed). Growth is from the end of the first {WARM_SHARE:.0%} of the soak (pools and "
        "caches warm) to its end.",
        "",
        "| idle | peak under load | after warm-up | at the end | growth |",
        "|---|---|---|---|---|",
        f"| {result.idle_mb:.0f} MiB | {result.peak_mb:.0f} MiB | {result.warm_mb:.0f} MiB | {result.end_mb:.0f} MiB "
        f"| {result.growth:+.1%} |",
        "",
        f"Goals: ≤ {GOAL_MB:.0f} MiB under load: {peak_verdict}. Growth < {GOAL_GROWTH:.0%} over the soak: "
        f"{growth_verdict}"
        + (
            ""
            if result.soak_seconds >= 600
            else f" (over {result.soak_seconds:.0f} s; the goal's ten minutes: `python -m benchmarks.memory "
            "--soak-seconds 600`)"
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--rate", type=float, default=Options.rate)
    parser.add_argument("--soak-seconds", type=float, default=Options.soak_seconds)
    args = parser.parse_args(argv)
    print(render(measure(Options(args.outcomes, rate=args.rate, soak_seconds=args.soak_seconds))))  # noqa: T201


if __name__ == "__main__":
    main()
