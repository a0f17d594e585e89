"""Benchmark: latency the gateway adds and the throughput it sustains, side by side with direct calls to the
upstream and with the LiteLLM proxy, in one run against one upstream stub.

`python -m benchmarks.gateway_overhead`; measures and reports, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import numpy as np

from benchmarks.load import Saturation, chat_body, interleaved_latencies, saturate
from benchmarks.router_fixture import DEFAULT_OUTCOMES, fit_and_save, test_prompts
from benchmarks.targets import (
    LITELLM_VERSION,
    Target,
    gateway_config,
    litellm_proxy,
    routeiq_gateway,
    tools_venv,
    upstream_stub,
)
from pipelines.demo_steps import say

FAMILY: Final = "knn"
PERCENTILES: Final = (50, 90, 99)
GOALS: Final = {"p50": 0.5, "p99": 2.0, "rps_per_core": 2500.0, "latency_ratio": 8.0, "throughput_ratio": 10.0}
ABLATIONS: Final = {"no telemetry": (False, True), "no router": (True, False), "neither": (False, False)}
"""Gateway variants timed beside the full one, name → (telemetry on, learned router loaded); without the router
a fixed fallback model answers."""
PACKAGES: Final = (
    ("routeiq (serving, routers, features)", ("serving/", "routers/", "features/", "registry/", "pipelines/")),
    ("opentelemetry", ("opentelemetry/",)),
    ("uvicorn / h11 / httptools", ("uvicorn/", "h11/", "httptools/")),
    ("fastapi / starlette / pydantic", ("fastapi/", "starlette/", "pydantic/", "pydantic_core/")),
    ("httpx / httpcore / anyio (upstream call)", ("httpx/", "httpcore/", "anyio/")),
    ("litellm", ("litellm/",)),
    ("logging", ("logging/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("numpy / scikit-learn / scipy", ("numpy/", "sklearn/", "scipy/")),
    ("json / orjson", ("json/", "orjson")),
    ("asyncio / selectors / threads", ("asyncio/", "selectors.py", "concurrent/", "threading.py", "queue.py")),
)


@dataclass(frozen=True)
class Options:
    outcomes: Path
    requests: int = 2000
    warmup: int = 200
    connections: int = 32
    seconds: float = 8.0
    profile_seconds: float = 8.0
    with_litellm: bool = True
    ablations: bool = True


@dataclass(frozen=True)
class Profile:
    """Where the gateway's CPU went under saturation: py-spy samples by the package of the innermost frame."""

    samples: int
    by_package: list[tuple[str, float]]
    top_functions: list[tuple[str, float]]


@dataclass
class Result:
    family: str
    prompt_chars: int
    latencies: dict[str, list[float]]
    errors: dict[str, int]
    saturation: dict[str, Saturation] = field(default_factory=dict)
    profile: Profile | None = None
    litellm_note: str = ""

    def added(self, target: str, percentile: int) -> float:
        """Added latency (ms): the target's percentile minus the direct call's."""
        return float(
            np.percentile(self.latencies[target], percentile) - np.percentile(self.latencies["direct"], percentile)
        )


def measure(options: Options) -> Result:
    with tempfile.TemporaryDirectory(prefix="routeiq-bench-") as tmp:
        workdir = Path(tmp)
        say(f"fitting a {FAMILY} router (fast features) on the RouterBench training split")
        router = fit_and_save(options.outcomes, FAMILY, workdir / "router")
        prompts = test_prompts(options.outcomes, 200)
        prompt = sorted(prompts, key=len)[len(prompts) // 2]
        with contextlib.ExitStack() as stack:
            targets, note = stack.enter_context(_targets(options, workdir, list(router.models), str(router.directory)))
            ablations = _ablations(
                stack, options, workdir, targets[0].url, models=list(router.models), router=router.directory
            )
            for target in [*targets, *ablations]:
                _check(target, prompt)
            timed = [*targets, *ablations]
            say(f"latency at 1 connection: {options.requests} rounds over {[t.name for t in timed]}, interleaved")
            latencies, errors = interleaved_latencies(timed, prompt, options.requests, options.warmup)
            result = Result(FAMILY, len(prompt), latencies, errors, litellm_note=note)
            for target in targets:
                say(f"throughput of {target.name}: {options.connections} connections for {options.seconds:.0f} s")
                result.saturation[target.name] = saturate(target, prompt, options.connections, options.seconds)
            result.profile = _profile(targets[1], prompt, options)
    return result


@contextlib.contextmanager
def _targets(options: Options, workdir: Path, models: list[str], reference: str) -> Iterator[tuple[list[Target], str]]:
    with contextlib.ExitStack() as stack:
        direct = stack.enter_context(upstream_stub(workdir, models))
        config = gateway_config(workdir, direct.url, models, reference)
        targets = [direct, stack.enter_context(routeiq_gateway(config, workdir))]
        note = "not measured (--no-litellm)"
        venv = tools_venv() if options.with_litellm else None
        if venv is not None:
            targets.append(stack.enter_context(litellm_proxy(venv, workdir, direct.url, models)))
            note = ""
        elif options.with_litellm:
            note = "not measured: its throwaway venv could not be built (see the log above)"
        yield targets, note


def _ablations(
    stack: contextlib.ExitStack, options: Options, workdir: Path, upstream: str, *, models: list[str], router: Path
) -> list[Target]:
    """The gateway again with parts switched off, to show where its added latency goes (latency table only)."""
    if not options.ablations:
        return []
    found = []
    for name, (telemetry_on, router_on) in ABLATIONS.items():
        directory = workdir / name.replace(" ", "-")
        directory.mkdir()
        reference = router if router_on else directory / "no-router"
        routing = {"reference": str(reference), "seed": 0, "fallback_model": models[0]}
        telemetry = {"directory": str((directory / "traces").resolve()), "enabled": telemetry_on}
        config = gateway_config(directory, upstream, models, str(router), {"routing": routing, "telemetry": telemetry})
        target = stack.enter_context(routeiq_gateway(config, directory))
        found.append(Target(f"routeiq, {name}", target.url, target.model, target.pid, target.headers))
    return found


def _check(target: Target, prompt: str) -> None:
    """One request before timing: it must succeed, and the gateway must answer with its learned router."""
    headers = {"Content-Type": "application/json", **target.headers}
    reply = httpx.post(target.chat_url, content=chat_body(target, prompt), headers=headers, timeout=30)
    if reply.status_code != 200:
        raise RuntimeError(f"{target.name} answered {reply.status_code}: {reply.text[:300]}")
    ablation = ABLATIONS.get(target.name.removeprefix("routeiq, "), (True, True))
    expected = "router" if ablation[1] else "fallback"
    if target.name.startswith("routeiq") and reply.headers.get("x-routeiq-decision") != expected:
        raise RuntimeError(f"the gateway did not route with its learned router: {dict(reply.headers)}")


def _profile(gateway: Target, prompt: str, options: Options) -> Profile | None:
    """Sample the gateway with py-spy (from the tools venv) while it is saturated; None when py-spy is missing."""
    venv = tools_venv(progress=False)
    spy = venv / "bin" / "py-spy" if venv else None
    if spy is None or not spy.exists() or options.profile_seconds <= 0:
        return None
    say(f"profiling the gateway with py-spy for {options.profile_seconds:.0f} s under saturation")
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [str(spy), "record", "--pid", str(gateway.pid), "--format", "raw", "--rate", "250", "--nonblocking"]
        command += ["--duration", f"{options.profile_seconds:.0f}", "--output", out.name]
        sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        saturate(gateway, prompt, options.connections, options.profile_seconds)
        _, stderr = sampler.communicate(timeout=60)
        if sampler.returncode:
            say(f"py-spy failed ({stderr.decode().strip()[-200:]}); no profile in the report")
            return None
        return _summarise(Path(out.name).read_text())


def _summarise(collapsed: str) -> Profile:
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        total += int(count)
        by_function[leaf] += int(count)
        by_package[_package(leaf)] += int(count)
    share = 100.0 / total if total else 0.0
    return Profile(
        total,
        [(name, n * share) for name, n in by_package.most_common()],
        [(name, n * share) for name, n in by_function.most_common(12)],
    )


def _package(frame: str) -> str:
    """py-spy names a frame `function (path/relative/to/sys.path.py:line)`."""
    path = frame.rpartition(" (")[2]
    for name, markers in PACKAGES:
        if any(path.startswith(marker) for marker in markers):
            return name
    return "other (CPython, libraries)"


def render(result: Result) -> str:
    lines = [
        "## Gateway overhead",
        "",
        "One run, one upstream stub (`benchmarks/upstream_stub.py`: plain asyncio HTTP/1.1 answering at once) and "
        "three targets in front of it: **direct** to the stub, the **RouteIQ** gateway (`routeiq serve`, one "
        f"process, the learned `{result.family}` router with fast features loaded and routing the virtual model "
        "`auto`, telemetry to OTLP-JSON files, master-key auth) and the **LiteLLM** proxy (`litellm --config`, "
        f"one worker, the same deployments, LiteLLM {LITELLM_VERSION} from a throwaway venv). "
        f"The prompt is a real RouterBench test prompt of {result.prompt_chars} characters.",
        "",
        *_latency_table(result),
        "",
        *_throughput_table(result),
        "",
        *_goals(result),
    ]
    if result.profile:
        lines += ["", *_profile_lines(result.profile)]
    return "\n".join(lines) + "\n"


def _latency_table(result: Result) -> list[str]:
    names = list(result.latencies)
    count = len(result.latencies["direct"])
    lines = [
        f"**Latency at 1 connection** ({count} requests per target, interleaved round by round; milliseconds). "
        "Added = the target's percentile minus the direct call's. The `routeiq, …` rows are the same gateway "
        "with telemetry off, with the learned router replaced by a fixed model, or both: the differences show "
        "where its added latency goes.",
        "",
        "| target | p50 | p90 | p99 | added p50 | added p90 | added p99 | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        cells = [f"{np.percentile(result.latencies[name], p):.3f}" for p in PERCENTILES]
        added = ["—"] * 3 if name == "direct" else [f"{result.added(name, p):.3f}" for p in PERCENTILES]
        lines.append(f"| {name} | {' | '.join(cells)} | {' | '.join(added)} | {result.errors[name]} |")
    if result.litellm_note:
        lines += ["", f"LiteLLM proxy: {result.litellm_note}."]
    return lines


def _throughput_table(result: Result) -> list[str]:
    any_run = next(iter(result.saturation.values()))
    lines = [
        f"**Throughput at {any_run.connections} connections** ({any_run.seconds:.0f} s per target with "
        f"{any_run.tool}). Per core = requests ÷ CPU seconds the target process used (the load generator and the "
        "stub share this machine's cores, so requests/s alone understates a dedicated core).",
        "",
        "| target | requests/s | errors | cores used | requests/s per core |",
        "|---|---|---|---|---|",
    ]
    for name, run in result.saturation.items():
        lines.append(f"| {name} | {run.rps:,.0f} | {run.errors} | {run.cores_used:.2f} | {run.rps_per_core:,.0f} |")
    return lines


def _goals(result: Result) -> list[str]:
    ours = result.saturation["routeiq"]
    rows = [
        ("added p50 ≤ 0.5 ms", result.added("routeiq", 50), GOALS["p50"], "ms", True),
        ("added p99 ≤ 2 ms", result.added("routeiq", 99), GOALS["p99"], "ms", True),
        ("≥ 2,500 requests/s per core", ours.rps_per_core, GOALS["rps_per_core"], "req/s", False),
    ]
    if "litellm" in result.saturation:
        theirs = result.saturation["litellm"]
        latency_ratio = result.added("litellm", 50) / max(result.added("routeiq", 50), 1e-6)
        rows.append(("≥ 8× lower added p50 than LiteLLM", latency_ratio, GOALS["latency_ratio"], "×", False))
        ratio = ours.rps_per_core / max(theirs.rps_per_core, 1e-6)
        rows.append(("≥ 10× LiteLLM's throughput per core", ratio, GOALS["throughput_ratio"], "×", False))
    lines = [
        "**Goals** (anchors published by others: TensorZero p50 0.35 ms / p99 0.94 ms, Bifrost ~0.44 ms, "
        "Portkey ~2.4 ms, LiteLLM ~4.3 ms added).",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
    ]
    for goal, value, bound, unit, lower_is_better in rows:
        met = value <= bound if lower_is_better else value >= bound
        gap = value / bound if lower_is_better else bound / max(value, 1e-9)
        verdict = "met" if met else f"missed: {gap:.1f}× {'over' if lower_is_better else 'short of'} the goal"
        lines.append(
            f"| {goal} | {value:,.3f} {unit} | {verdict} |"
            if unit == "ms"
            else f"| {goal} | {value:,.1f} {unit} | {verdict} |"
        )
    return lines


def _profile_lines(profile: Profile) -> list[str]:
    lines = [
        f"**Where the gateway's time goes** under saturation (py-spy, {profile.samples:,} samples of all threads, "
        "attributed to the innermost frame; idle waits in the event loop's selector count as asyncio).",
        "",
        "| package | share of samples |",
        "|---|---|",
        *[f"| {name} | {share:.1f}% |" for name, share in profile.by_package],
        "",
        "| innermost function | share |",
        "|---|---|",
        *[f"| `{name}` | {share:.1f}% |" for name, share in profile.top_functions],
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", type=Path, default=DEFAULT_OUTCOMES)
    parser.add_argument("--requests", type=int, default=Options.requests)
    parser.add_argument("--seconds", type=float, default=Options.seconds)
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args(argv)
    options = Options(args.outcomes, requests=args.requests, seconds=args.seconds, with_litellm=not args.no_litellm)
    print(render(measure(options)))  # noqa: T201


if __name__ == "__main__":
    main()
