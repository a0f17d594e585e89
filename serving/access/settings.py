"""The `routeiq_settings.access` section: where virtual keys, the audit log and quota counters live.
Settings only."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class AuditSettings(BaseModel):
    """Where admin actions, key changes, promotions and policy denials are recorded."""

    model_config = _FROZEN

    path: Path = Path("runs/gateway/audit.sqlite")
    """Embedded sqlite audit log (relative to the working directory), used when `dsn` is unset."""
    dsn: str | None = None
    """PostgreSQL DSN (`postgresql://user@host/db`, or an `os.environ/VAR` reference); set: entries go there."""
    table: str = Field(default="routeiq_audit", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Table the entries are written to (created if missing); lower-case letters, digits and `_`."""
    required: bool = False
    """Refuse an audited action (503, nothing changes) when its audit entry cannot be written."""


class TeamLimits(BaseModel):
    """One team's limits, shared by every key of that team (each key's own limits apply as well)."""

    model_config = _FROZEN

    rpm: int | None = Field(default=None, ge=1)
    """Requests per minute (fixed 60-second windows) for all the team's keys together; None: unlimited."""
    tpm: int | None = Field(default=None, ge=1)
    """Tokens per minute (prompt + completion, from the responses' usage); None: unlimited."""
    max_budget_usd: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    """Cumulative spend in USD after which the team's requests are refused (429); None: unlimited."""


class QuotaSettings(BaseModel):
    """Where rpm/tpm/budget counters live: per key (limits on the key) and per team (`teams` below)."""

    model_config = _FROZEN

    backend: Literal["memory", "sqlite", "redis"] = "memory"
    """`memory`: counters in this process (one replica; spend resets on restart); `sqlite`: in `path` (spend
    survives restarts; replicas on one host may share it); `redis`: shared by replicas anywhere."""
    path: Path = Path("runs/gateway/quotas.sqlite")
    """The sqlite file of the `sqlite` backend (relative to the working directory)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis holding the counters when `backend` is `redis`; unreachable: `/v1/*` calls with limits get 503."""
    key_prefix: str = Field(default="routeiq:quota", min_length=1, max_length=128)
    """Prefix of every Redis key written, so several gateways (or tests) can share one Redis apart."""
    reserve_output_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    """Output tokens a request reserves against tpm and budget when it sets no `max_tokens` and its model's
    output limit is unknown (`model_info.max_output_tokens` or LiteLLM's price map give it otherwise)."""
    teams: dict[str, TeamLimits] = {}
    """Team name (the `team` of a key) → its limits (table below); teams not listed have no team limit."""


class AccessSettings(BaseModel):
    """Virtual keys and the audit log; the master key stays `general_settings.master_key` (role admin)."""

    model_config = _FROZEN

    key_store: Path = Path("runs/gateway/keys.sqlite")
    """Embedded sqlite file of virtual keys (relative to the working directory), created on first use."""
    secret: str | None = Field(default=None, min_length=16)
    """HMAC pepper of stored key hashes (use an `os.environ/VAR` reference); None: a random one kept in the store."""
    audit: AuditSettings = AuditSettings()
    """The audit log (table below)."""
    quotas: QuotaSettings = QuotaSettings()
    """Enforcement of the keys' rpm/tpm/max_budget_usd and of team limits (table below)."""
