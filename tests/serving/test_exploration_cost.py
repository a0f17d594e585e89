"""What exploration spends is on /metrics: the cost of every request whose model exploration drew is counted in
`routeiq_exploration_cost_usd_total` beside the total, so the explored share of spend can be watched."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import PROMPT, GatewayFactory, save_two_model_router

MASTER = "exploration-cost-master-key"


def totals(metrics: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name in {"routeiq_cost_usd_total", "routeiq_exploration_cost_usd_total"}:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


def ask(url: str, times: int) -> list[str]:
    body = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"Authorization": f"Bearer {MASTER}"}
    decisions = []
    for _ in range(times):
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        decisions.append(answer.headers["x-routeiq-decision"])
    return decisions


def test_explored_requests_are_counted_apart(start_gateway: GatewayFactory, tmp_path: Path, data_dir: Path) -> None:
    router = save_two_model_router(data_dir, tmp_path / "router", "cheapest")
    # A generous decision budget: on a loaded machine the default 250 ms could let the fallback answer.
    always = {"reference": str(router), "epsilon": 1.0, "exploration": "boltzmann", "seed": 0, "budget_ms": 60_000.0}
    with start_gateway(master_key=MASTER, routing=always) as url:
        assert set(ask(url, 6)) == {"explore"}
        explored = totals(httpx.get(f"{url}/metrics", timeout=30).text)
    assert explored["routeiq_cost_usd_total"] > 0
    assert explored["routeiq_exploration_cost_usd_total"] == explored["routeiq_cost_usd_total"]
    with start_gateway(master_key=MASTER, routing={"reference": str(router), "budget_ms": 60_000.0}) as url:
        assert set(ask(url, 4)) == {"router"}
        greedy = totals(httpx.get(f"{url}/metrics", timeout=30).text)
    assert greedy["routeiq_cost_usd_total"] > 0 and greedy.get("routeiq_exploration_cost_usd_total", 0.0) == 0.0
