"""Fixtures of the attack suites: a replay upstream on loopback that counts the requests it gets, and a gateway
config with a master key whose deployments `alpha` and `beta` call it (no MLflow: the router reference is a
missing folder, so the virtual model `auto` falls back to a uniform draw)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.background_server import running_server
from serving.config import GatewayConfig, parse_config
from serving.replay import ReplaySettings
from serving.replay import create_app as create_replay_app
from tests.serving.conftest import PROMPT, UPSTREAM_MODELS, write_outcomes

MASTER_KEY = "attack-suite-master-key-0123"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = "/v1/chat/completions"


@dataclass
class Upstream:
    """The replay upstream's `/v1` URL and the path of every request it received, in order."""

    url: str
    calls: list[str] = field(default_factory=list)


class Counting:
    """An ASGI wrapper recording each HTTP request's path before the replay app answers it."""

    def __init__(self, app: ASGIApp, calls: list[str]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A replay provider answering PROMPT as `alpha` and `beta`, counting what reaches it."""
    path = write_outcomes(tmp_path_factory.mktemp("replay") / "outcomes.parquet")
    calls: list[str] = []
    app = Counting(create_replay_app(ReplaySettings(outcomes=path)), calls)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on")
    with running_server(config, "replay-server") as url:
        yield Upstream(f"{url}/v1", calls)


def gateway_config(upstream: str, folder: Path, limits: dict[str, Any] | None = None) -> GatewayConfig:
    """A gateway on `upstream` keeping its keys, audit log and spans in `folder`."""
    return parse_config(
        {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream}}
                for m in UPSTREAM_MODELS
            ],
            "general_settings": {"master_key": MASTER_KEY},
            "routeiq_settings": {
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(folder / "traces")},
                "access": {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "audit.sqlite")}},
                "routing": {"reference": str(folder / "no-router")},
                "limits": limits or {},
            },
        }
    )


def chat_body(model: str = "alpha", **extra: Any) -> dict[str, Any]:
    """A chat body the replay upstream answers (it recorded PROMPT for `alpha` and `beta`)."""
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], **extra}
