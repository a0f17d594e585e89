"""The gateway steps of `make demo`: serve a router through `routeiq serve` in front of the replay provider,
drive recorded test prompts through it with feedback, and show what its spans recorded.

Loopback only; the gateway process is stopped by the context manager that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml  # type: ignore[import-untyped]

from pipelines.demo_steps import free_port, running_process, say
from pipelines.outcomes import read_outcomes
from pipelines.traffic import TrafficSummary, drive, prompts_of
from serving.telemetry import attributes
from serving.telemetry.files import scan_spans

DEMO_KEY = "sk-routeiq-demo"


def write_config(workdir: Path, upstream: str, models: list[str], router: Path) -> Path:
    """A LiteLLM-format config: every recorded model behind the replay provider, the router from `router`."""
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "replay"}}
            for m in models
        ],
        "router_settings": {"routing_strategy": "llmrouter-any"},
        "general_settings": {"master_key": DEMO_KEY},
        "routeiq_settings": {
            "routing": {"reference": str(router.resolve()), "seed": 0},
            "telemetry": {"directory": str((workdir / "traces").resolve()), "capture_prompts": True},
        },
    }
    # A fresh trace directory per demo run, so the counts shown at the end are this run's.
    shutil.rmtree(workdir / "traces", ignore_errors=True)
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def running_gateway(config: Path, workdir: Path) -> Iterator[str]:
    """`routeiq serve --config` on a free loopback port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    arguments = ["serve", "--config", str(config), "--port", str(port)]
    with running_process("gateway", arguments, f"{url}/_health/ready", workdir / "gateway.log"):
        yield url


def drive_gateway(url: str, outcomes: Path, count: int, cost_weight: float) -> TrafficSummary:
    """Send `count` test prompts to the virtual model with the openai client; post recorded quality as feedback."""
    status = httpx.get(f"{url}/admin/router", headers={"Authorization": f"Bearer {DEMO_KEY}"}).json()
    champion = status["champion"]
    say(f"routing with the {champion['family']} router from {champion['reference']}, λ = {cost_weight}")
    prompts = prompts_of(read_outcomes(outcomes), "test", count)
    summary = asyncio.run(drive(url, prompts, api_key=DEMO_KEY, cost_weight=cost_weight, concurrency=4))
    for line in summary.render().splitlines():
        say(line)
    return summary


def show_spans(workdir: Path) -> None:
    """What the gateway's trace files hold now that it has stopped (and flushed)."""
    scan = scan_spans(workdir / "traces")
    names = Counter(record.name for record in scan.records)
    known = sum(1 for r in scan.records if r.attributes.get(attributes.FEEDBACK_KNOWN) is True)
    say(
        f"{len(scan.records)} spans in {workdir / 'traces'}: {names[attributes.CHAT_SPAN_NAME]} requests, "
        f"{names[attributes.FEEDBACK_SPAN_NAME]} feedback ({known} linked to their request), "
        f"{scan.malformed_count} malformed lines"
    )
