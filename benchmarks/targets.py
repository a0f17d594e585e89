"""The servers a benchmark runs against, each in its own process on loopback: the upstream stub, the RouteIQ
gateway with a learned router loaded, and the LiteLLM proxy from its own throwaway venv.

Every server is stopped by the context manager that started it. Process CPU time and memory are read with
psutil so throughput can be reported per core actually used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil
import yaml  # type: ignore[import-untyped]

from pipelines.demo_steps import free_port, running_command, say

MASTER_KEY: Final = "sk-routeiq-bench"
LITELLM_VERSION: Final = "1.106.12"
"""A LiteLLM whose `[proxy]` extra resolves on PyPI: from 1.109 on it pins `litellm-proxy`/`-extras` releases
that are not published. Never 1.82.7 or 1.82.8."""
TOOLS_VENV: Final = Path("runs/bench/tools-venv")
"""LiteLLM proxy and py-spy live here, never in the project's environment."""
OFFLINE_ENV: Final = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


@dataclass(frozen=True)
class Target:
    """A server under test: where to send, which model to ask for, and its process (for CPU and memory)."""

    name: str
    url: str
    model: str
    pid: int
    headers: Mapping[str, str]

    @property
    def chat_url(self) -> str:
        return f"{self.url}/v1/chat/completions"

    def process(self) -> psutil.Process:
        return psutil.Process(self.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    process = psutil.Process(pid)
    total = sum(process.cpu_times()[:2])
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return float(total)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return float(total) / 2**20


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **OFFLINE_ENV, **(extra or {})}


@contextlib.contextmanager
def upstream_stub(workdir: Path, models: list[str]) -> Iterator[Target]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "benchmarks.upstream_stub", "--port", str(port), "--models", ",".join(models)]
    with running_command("upstream stub", command, f"{url}/v1/models", workdir / "stub.log", env=child_env()) as p:
        yield Target("direct", url, models[0], p.pid, {})


def gateway_config(
    workdir: Path, upstream: str, models: list[str], reference: str, extra: Mapping[str, Any] | None = None
) -> Path:
    """Every model behind the upstream; the router at `reference`; telemetry to files (the default exporter)."""
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": f"{upstream}/v1", "api_key": "x"}}
            for m in models
        ],
        "router_settings": {"routing_strategy": "llmrouter-any"},
        "general_settings": {"master_key": MASTER_KEY},
        "routeiq_settings": {
            "routing": {"reference": reference, "seed": 0},
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},  # the replay upstream runs on loopback
            "telemetry": {"directory": str((workdir / "traces").resolve())},
            **(extra or {}),
        },
    }
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def routeiq_gateway(config: Path, workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[Target]:
    """`routeiq serve --config` on a free loopback port; the router must be loaded before it counts as ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--config", str(config.resolve()), "--port", str(port)]
    with running_command(
        "RouteIQ gateway", command, f"{url}/_health/ready", workdir / "gateway.log", env=child_env(env)
    ) as p:
        yield Target("routeiq", url, "auto", p.pid, {"Authorization": f"Bearer {MASTER_KEY}"})


def tools_venv(progress: bool = True) -> Path | None:
    """The throwaway venv with the LiteLLM proxy and py-spy, created on first use; None when it cannot be built
    (no network to PyPI, say): the benchmark then reports LiteLLM as not measured."""
    python = TOOLS_VENV / "bin" / "python"
    stamp = TOOLS_VENV / f".litellm-{LITELLM_VERSION}"
    if stamp.exists():
        return TOOLS_VENV
    if progress:
        say(f"building {TOOLS_VENV} (litellm[proxy]=={LITELLM_VERSION}, py-spy) once; about two minutes")
    shutil.rmtree(TOOLS_VENV, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(TOOLS_VENV)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--progress-bar",
            "off",
            f"litellm[proxy]=={LITELLM_VERSION}",
            "py-spy==0.4.3",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode:
            say(f"could not build the tools venv ({' '.join(step[:4])}…): {done.stderr.strip()[-300:]}")
            return None
    stamp.touch()
    return TOOLS_VENV


@contextlib.contextmanager
def litellm_proxy(venv: Path, workdir: Path, upstream: str, models: list[str]) -> Iterator[Target]:
    """`litellm --config` with the same deployments, one worker, no database, no callbacks."""
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": f"{upstream}/v1", "api_key": "x"}}
            for m in models
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = workdir / "litellm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(path.resolve()),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--num_workers",
        "1",
    ]
    env = child_env({"LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True"})
    with running_command("LiteLLM proxy", command, f"{url}/health/liveliness", workdir / "litellm.log", env=env) as p:
        yield Target("litellm", url, models[0], p.pid, {"Authorization": f"Bearer {MASTER_KEY}"})


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
