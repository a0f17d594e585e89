"""The `routeiq_settings.access` section: where virtual keys and the audit log live. Settings only."""

from __future__ import annotations

from pathlib import Path

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


class AccessSettings(BaseModel):
    """Virtual keys and the audit log; the master key stays `general_settings.master_key` (role admin)."""

    model_config = _FROZEN

    key_store: Path = Path("runs/gateway/keys.sqlite")
    """Embedded sqlite file of virtual keys (relative to the working directory), created on first use."""
    secret: str | None = Field(default=None, min_length=16)
    """HMAC pepper of stored key hashes (use an `os.environ/VAR` reference); None: a random one kept in the store."""
    audit: AuditSettings = AuditSettings()
    """The audit log (table below)."""
