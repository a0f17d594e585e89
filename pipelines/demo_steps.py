"""The steps of `make demo`, each a function that does one thing and prints what it did.

Processes started here are loopback-only and are always stopped by the context manager that started them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from features import schema
from features.registry import build
from pipelines.evaluation import run_eval
from pipelines.outcomes import import_source, read_outcomes, write_outcomes
from pipelines.sources import SOURCES
from pipelines.summary import render, summarise
from pipelines.train import split_sets
from routers.artifact import save
from routers.registry import family_class
from routers.routing_model import RoutingModel

REPLAY_MODELS = ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat", "claude-instant-v1")
DEMO_COST_WEIGHT = 20.0
"""λ of the router's own choices: one quality point (0.01) is worth $0.0005 per prompt."""
READY_TIMEOUT_S = 60.0
KNN_ARTIFACT = "router-knn"


def say(text: str) -> None:
    print(f"    {text}", flush=True)  # noqa: T201


def import_all(data_dir: Path, workdir: Path) -> dict[str, Path]:
    """Import every known source into `workdir/data/<source>.parquet`."""
    paths = {}
    for name in SOURCES:
        table, stats = import_source(name, data_dir / name)
        paths[name] = workdir / "data" / f"{name}.parquet"
        write_outcomes(table, paths[name])
        splits = ", ".join(f"{k} {v}" for k, v in sorted(stats.per_split.items()))
        say(f"{name}: {stats.rows} rows, {stats.prompts} prompts ({splits}), {stats.unknown_quality} unknown → null")
    return paths


def summarise_test_split(path: Path) -> None:
    blocks = [b for b in summarise(read_outcomes(path)) if b["split"] == schema.TEST]
    for line in render(blocks).splitlines():
        say(line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_process(
    name: str, arguments: list[str], ready_url: str, log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `python -m pipelines.cli <arguments>`; wait until `ready_url` answers 200; always stop it."""
    command = [sys.executable, "-m", "pipelines.cli", *arguments]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)  # noqa: S603
        try:
            _wait_ready(name, ready_url, process, log)
            say(f"{name} pid {process.pid} ready (log: {log})")
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the normal end.
            ended = "cleanly" if process.returncode in (0, -signal.SIGTERM) else f"with code {process.returncode}"
            say(f"{name} stopped {ended}")


@contextlib.contextmanager
def running_replay_provider(outcomes: Path, workdir: Path) -> Iterator[str]:
    """Start `routeiq replay-provider` on a free loopback port; yield its `/v1` base URL; always stop it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    arguments = ["replay-provider", "--outcomes", str(outcomes), "--port", str(port)]
    with running_process("replay provider", arguments, f"{base_url}/models", workdir / "replay-provider.log"):
        yield base_url


def _wait_ready(name: str, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s; see {log}")


def replay_round_trip(base_url: str, outcomes: Path, count: int) -> int:
    """Ask the provider for recorded test prompts with the official SDK; check text and cost; return matches."""
    import openai

    rows = _sample_rows(read_outcomes(outcomes), count)
    client = openai.OpenAI(base_url=base_url, api_key="replay", max_retries=0)
    matches = 0
    for i, row in enumerate(rows):
        messages: Any = [{"role": "user", "content": row[schema.PROMPT]}]
        if i == len(rows) - 1:
            chunks = list(
                client.chat.completions.create(
                    model=row[schema.MODEL],
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
            usage = chunks[-1].usage
            cost = (usage.model_extra or {}).get("cost") if usage else None
        else:
            reply = client.chat.completions.create(model=row[schema.MODEL], messages=messages)
            text = reply.choices[0].message.content or ""
            cost = (reply.usage.model_extra or {}).get("cost") if reply.usage else None
        ok = text == (row[schema.RESPONSE] or "") and cost == row[schema.COST_USD]
        matches += ok
        mode = "stream" if i == len(rows) - 1 else "call  "
        say(f"{mode} {row[schema.MODEL]:<30} ${cost:.6f} {json.dumps(text[:32])} {'matches' if ok else 'DIFFERS'}")
    say(f"{matches}/{len(rows)} answers and costs identical to the recorded ones")
    return matches


def _sample_rows(table: pa.Table, count: int) -> list[dict[str, Any]]:
    test = table.filter(pa.compute.equal(table[schema.SPLIT], schema.TEST)).to_pylist()
    by_key = {(r[schema.PROMPT_ID], r[schema.MODEL]): r for r in test}
    prompt_ids = sorted({r[schema.PROMPT_ID] for r in test})[:count]
    return [by_key[(p, REPLAY_MODELS[i % len(REPLAY_MODELS)])] for i, p in enumerate(prompt_ids)]


def evaluate_knn_router(outcomes: Path, workdir: Path) -> dict[str, Any]:
    """Fit a kNN router (fast features, default parameters) on the training split; route and score the test split.

    The fitted router is saved as an artifact under `workdir` for the gateway step."""
    table = read_outcomes(outcomes)
    splits = split_sets(table)
    featurizer = build("fast").fit(list(splits.train.prompts))
    train = splits.train.with_features(featurizer.transform(list(splits.train.prompts)))
    model = RoutingModel(featurizer, family_class("knn")(seed=0).fit(train))
    save(workdir / KNN_ARTIFACT, model.router, model.featurizer)
    decisions = model.decide(list(splits.test.prompts), cost_weight=DEMO_COST_WEIGHT, ids=list(splits.test.prompt_ids))
    decisions_path = workdir / "decisions-knn.jsonl"
    decisions_path.write_text("".join(json.dumps(d.as_record()) + "\n" for d in decisions))
    report = run_eval(outcomes, decisions_path, workdir / "eval")
    for key, value in report["summary"].items():
        say(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    say(f"report {workdir / 'eval' / 'report.json'}, plot {workdir / 'eval' / 'curves.png'}")
    return report


def recorded_models(outcomes: Path) -> list[str]:
    """Every model with recorded answers in `outcomes`, sorted."""
    return sorted(set(read_outcomes(outcomes)[schema.MODEL].to_pylist()))
