"""Fixtures of the attack suites: a replay upstream on loopback that counts the requests it gets, and a gateway
config with a master key whose deployments `alpha` and `beta` call it (no MLflow: the router reference is a
missing folder, so the virtual model `auto` falls back to a uniform draw)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.background_server import running_server
from serving.config import GatewayConfig, parse_config
from serving.replay import ReplaySettings
from serving.replay import create_app as create_replay_app
from tests.serving.conftest import PROMPT, UPSTREAM_MODELS, write_outcomes

MASTER_KEY = "attack-suite-master-key-0123"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = "/v1/chat/completions"


@dataclass(frozen=True)
class Seen:
    """One request the upstream received: its path, headers (lower-case names) and body."""

    path: str
    headers: list[tuple[str, str]]
    body: bytearray


@dataclass
class Upstream:
    """The replay upstream's `/v1` URL, the path of every request it received, in order, and the requests."""

    url: str
    calls: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)


class Counting:
    """An ASGI wrapper recording each HTTP request (path, headers, body) before the replay app answers it."""

    def __init__(self, app: ASGIApp, calls: list[str], seen: list[Seen] | None = None) -> None:
        self.app = app
        self.calls = calls
        self.seen = seen if seen is not None else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.calls.append(scope["path"])
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        seen = Seen(scope["path"], headers, bytearray())
        self.seen.append(seen)

        async def recording() -> Message:
            message = await receive()
            seen.body.extend(message.get("body", b""))
            return message

        await self.app(scope, recording, send)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A replay provider answering PROMPT as `alpha` and `beta`, counting what reaches it."""
    path = write_outcomes(tmp_path_factory.mktemp("replay") / "outcomes.parquet")
    with serve_replay(path) as served:
        yield served


@contextmanager
def serve_replay(outcomes: Path, **settings: Any) -> Iterator[Upstream]:
    """A replay provider of `outcomes` on loopback (`settings`: more `ReplaySettings`), recording what it gets."""
    upstream = Upstream("")
    app = Counting(create_replay_app(ReplaySettings(outcomes=outcomes, **settings)), upstream.calls, upstream.seen)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on")
    with running_server(config, "replay-server") as url:
        upstream.url = f"{url}/v1"
        yield upstream


def gateway_config(
    upstream: str,
    folder: Path,
    limits: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    **routeiq: Any,
) -> GatewayConfig:
    """A gateway on `upstream` keeping its keys, audit log and spans in `folder`; `params` are added to every
    deployment's `litellm_params`, `routeiq` sections replace those of `routeiq_settings`."""
    return parse_config(
        {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream, **(params or {})}}
                for m in UPSTREAM_MODELS
            ],
            "general_settings": {"master_key": MASTER_KEY},
            "routeiq_settings": {
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(folder / "traces")},
                "access": {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "audit.sqlite")}},
                "routing": {"reference": str(folder / "no-router")},
                "limits": limits or {},
                **routeiq,
            },
        }
    )


def chat_body(model: str = "alpha", **extra: Any) -> dict[str, Any]:
    """A chat body the replay upstream answers (it recorded PROMPT for `alpha` and `beta`)."""
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], **extra}


def access_section(folder: Path, **extra: Any) -> dict[str, Any]:
    """`routeiq_settings.access` keeping keys and audit in `folder`, with `extra` keys (e.g. `quotas`)."""
    return {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "audit.sqlite")}, **extra}
