"""Virtual keys: the record, the create request, how a key string becomes a stored hash, and the `KeyStore`
protocol. No storage here (see `sqlite_store`); the key string itself is never kept anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

KEY_PREFIX = "sk-riq-"
LOOKUP_CHARS = 16
"""Hex characters of the digest used as the indexed lookup id; the full digest is then compared."""
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
"""Team names and model names of keys: no control characters (they end up in logs, audit rows and headers)."""
MAX_LIMIT = 2**63 - 1
"""Largest rpm/tpm a key may carry: what the key store's integer columns hold."""


class Role(StrEnum):
    """What a key may do: admin (everything), operator (admin routes but keys), user (`/v1/*` only)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    USER = "user"


class KeyStoreError(RuntimeError):
    """The key store cannot be read or written; callers must deny (fail closed), never allow."""


class KeyRequest(BaseModel):
    """`POST /admin/keys` body: who the key is for and its limits (limits are stored, enforced elsewhere)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    team: str | None = Field(default=None, min_length=1, max_length=128, pattern=PRINTABLE)
    role: Role = Field(default=Role.USER, strict=False)
    """admin, operator or user (JSON strings; strictness elsewhere is kept)."""
    allowed_models: list[Annotated[str, Field(min_length=1, max_length=256, pattern=PRINTABLE)]] = Field(
        default_factory=list, max_length=256
    )
    max_budget_usd: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    tpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    expires_at: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    """Unix seconds after which the key is refused; None: never expires."""


@dataclass(frozen=True)
class VirtualKey:
    """A stored key without its secret: identity, role, limits and lifecycle times (unix seconds)."""

    id: str
    team: str | None
    role: Role
    allowed_models: tuple[str, ...]
    max_budget_usd: float | None
    rpm: int | None
    tpm: int | None
    expires_at: float | None
    revoked_at: float | None
    created_at: float

    def usable(self, now: float) -> bool:
        """Not revoked and not expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def allows(self, model: str) -> bool:
        """An empty `allowed_models` means every model."""
        return not self.allowed_models or model in self.allowed_models

    def public(self) -> dict[str, object]:
        """The key as admin routes show it: never the secret, never its hash."""
        return {
            "id": self.id,
            "object": "key",
            "team": self.team,
            "role": self.role.value,
            "allowed_models": list(self.allowed_models),
            "max_budget_usd": self.max_budget_usd,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class NewKey:
    """A key just minted: the record to store and the secret string, shown to the caller once."""

    record: VirtualKey
    secret: str


def mint(request: KeyRequest) -> NewKey:
    """A fresh random key for `request`; pure apart from the clock and the CSPRNG."""
    record = VirtualKey(
        id=f"key-{secrets.token_hex(8)}",
        team=request.team,
        role=request.role,
        allowed_models=tuple(request.allowed_models),
        max_budget_usd=request.max_budget_usd,
        rpm=request.rpm,
        tpm=request.tpm,
        expires_at=request.expires_at,
        revoked_at=None,
        created_at=time.time(),
    )
    return NewKey(record, KEY_PREFIX + secrets.token_urlsafe(32))


def digest(secret: str, pepper: bytes) -> str:
    """HMAC-SHA256 of the key under the server's pepper: a stolen store alone cannot test guesses."""
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def lookup_id(hashed: str) -> str:
    """The indexed id a key is found by: a prefix of its digest, so the lookup itself leaks nothing."""
    return hashed[:LOOKUP_CHARS]


class KeyStore(Protocol):
    """Where virtual keys live. Every method raises `KeyStoreError` when the store cannot answer."""

    async def add(self, key: NewKey) -> None:
        """Store `key` hashed; the secret itself is not kept."""

    async def find(self, secret: str) -> VirtualKey | None:
        """The key whose secret is `secret` (constant-time digest comparison), revoked or not; None if unknown."""

    async def list_keys(self) -> list[VirtualKey]:
        """Every key, oldest first, revoked ones included."""

    async def revoke(self, key_id: str, when: float) -> VirtualKey | None:
        """Mark `key_id` revoked at `when` (kept if already revoked); None if there is no such key."""

    async def has_keys(self) -> bool:
        """Whether any key was ever created: then `/v1/*` needs a key even without a master key."""
