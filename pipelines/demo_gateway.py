"""The gateway steps of `make demo`: serve a router through `routeiq serve` in front of the replay provider,
drive recorded test prompts through it with feedback, and show what its spans recorded.

Loopback only; the gateway process is stopped by the context manager that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml  # type: ignore[import-untyped]

from pipelines.demo_steps import free_port, running_process, say
from pipelines.traffic import Prompt, TrafficSummary, drive

DEMO_KEY = "sk-routeiq-demo"
TRACES = Path("runs/traces")
"""Where the gateway writes spans, inside its working directory: the loop's `loop.traces`."""


def write_config(
    workdir: Path,
    upstream: str,
    models: list[str],
    reference: str,
    *,
    cost_weight: float,
    poll_seconds: float = 30.0,
    traces: Path = TRACES,
    routing: dict[str, Any] | None = None,
) -> Path:
    """A LiteLLM-format config: every recorded model behind the replay provider, the router at `reference`
    (a registry reference or an artifact directory), prompts captured for the loop; `routing`: more
    `routeiq_settings.routing` keys (exploration, say)."""
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "replay"}}
            for m in models
        ],
        "router_settings": {
            "routing_strategy": "llmrouter-any",
            "routing_strategy_args": {"hot_reload": True, "reload_interval": poll_seconds},
        },
        "general_settings": {"master_key": DEMO_KEY},
        "routeiq_settings": {
            "routing": {"reference": reference, "seed": 0, "cost_weight": cost_weight, **(routing or {})},
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},  # the replay provider runs on loopback
            "telemetry": {"directory": str((workdir / traces).resolve()), "capture_prompts": True},
        },
    }
    # A fresh trace directory per demo run, so the counts shown at the end are this run's.
    shutil.rmtree(workdir / traces, ignore_errors=True)
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def running_gateway(config: Path, workdir: Path) -> Iterator[str]:
    """`routeiq serve --config` on a free loopback port, working directory `workdir`; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    arguments = ["serve", "--config", str(config.resolve()), "--port", str(port)]
    with running_process("gateway", arguments, f"{url}/_health/ready", workdir / "gateway.log", cwd=workdir):
        yield url


def router_status(url: str) -> dict[str, Any]:
    status: dict[str, Any] = httpx.get(f"{url}/admin/router", headers={"Authorization": f"Bearer {DEMO_KEY}"}).json()
    return status


def await_version(url: str, version: int, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the gateway's champion serves `version` (its registry poller hot-reloads it); its status."""
    deadline = time.monotonic() + timeout
    while True:
        champion: dict[str, Any] = router_status(url)["champion"]
        if champion["version"] == version:
            return champion
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not load version {version} within {timeout:.0f} s")
        time.sleep(0.2)


def drive_gateway(url: str, prompts: list[Prompt], concurrency: int = 8) -> TrafficSummary:
    """Send `prompts` to the virtual model with the openai client; post recorded quality as feedback."""
    champion = router_status(url)["champion"]
    routed = f"the {champion['family']} router v{champion['version']}" if champion["version"] else "the fallback"
    say(f"{len(prompts)} prompts through the gateway, routed by {routed}")
    summary = asyncio.run(drive(url, prompts, api_key=DEMO_KEY, concurrency=concurrency))
    for line in summary.render().splitlines():
        say(line)
    return summary
