"""Who is calling and may they: the master key or a virtual key becomes a `Principal`; roles gate routes;
every decision that matters is audited. Fail closed: a store or (required) audit failure denies with 503.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from serving.access.audit import ALLOWED, DENIED, MASTER, AuditEntry, AuditError, AuditLog
from serving.access.keys import KEY_PREFIX, KeyStore, KeyStoreError, Role, VirtualKey
from serving.access.quotas import Quotas
from serving.exceptions import AccessUnavailableError, AuthenticationError, PermissionDeniedError

log = logging.getLogger("routeiq.access")

ANONYMOUS = "anonymous"
OPEN_RECHECK_SECONDS = 1.0
"""How long "the store holds no keys" is believed before asking again (keys are never deleted, so a
yes is kept for good); keeps an open gateway from querying sqlite on every request."""


@dataclass(frozen=True)
class Principal:
    """The caller: `actor` is "master", a key id, or "anonymous" (no master key and no keys: open mode)."""

    actor: str
    role: Role | None
    key: VirtualKey | None = None


@dataclass
class AccessControl:
    """The key store, the audit log and the master key of one gateway, and the rules that combine them."""

    keys: KeyStore
    audit_log: AuditLog
    master_key: str | None
    audit_required: bool = False
    quotas: Quotas = field(default_factory=Quotas)
    """Per-key and per-team rpm/tpm/budget, checked by the `/v1/*` routes that call a provider."""
    _keys_seen: bool = False
    _no_keys_at: float = field(default=-1.0e9)

    async def principal(self, token: str | None) -> Principal:
        """The caller behind `token`, or `AuthenticationError` (401) / `AccessUnavailableError` (503)."""
        if token is not None and self.master_key is not None and _same(token, self.master_key):
            return Principal(MASTER, Role.ADMIN)
        if token is not None and token.startswith(KEY_PREFIX):
            key = await self._find(token)
            if key is not None:
                return _usable(key)
        if self.master_key is None and not await self.has_keys():
            return Principal(ANONYMOUS, None)
        raise AuthenticationError()

    async def has_keys(self) -> bool:
        """Whether the store holds any key; a failing store raises 503 rather than opening the gateway."""
        now = time.monotonic()
        if self._keys_seen or now - self._no_keys_at < OPEN_RECHECK_SECONDS:
            return self._keys_seen
        try:
            self._keys_seen = await self.keys.has_keys()
        except KeyStoreError as exc:
            raise _unavailable(exc) from exc
        self._no_keys_at = now
        return self._keys_seen

    def key_added(self) -> None:
        """A key now exists: auth is required from here on even without a master key."""
        self._keys_seen = True

    async def _find(self, token: str) -> VirtualKey | None:
        try:
            return await self.keys.find(token)
        except KeyStoreError as exc:
            raise _unavailable(exc) from exc

    async def audit(self, entry: AuditEntry) -> None:
        """Write `entry`; when it fails, refuse with 503 if the audit is required, else log and go on."""
        try:
            await self.audit_log.record(entry)
        except AuditError as exc:
            if self.audit_required:
                raise AccessUnavailableError(
                    f"The audit log cannot be written, and routeiq_settings.access.audit.required is on, so "
                    f"`{entry.action}` was refused and nothing changed; retry once the audit log is back ({exc})."
                ) from exc
            log.warning("audit entry %s %s not written: %s", entry.action, entry.target, exc)

    async def require_role(self, principal: Principal, roles: Collection[Role], action: str) -> None:
        """Allow `principal` if its role is in `roles`; audit the decision either way."""
        if principal.role in roles:
            await self.audit(AuditEntry(principal.actor, action, action, ALLOWED, {"role": principal.role}))
            return
        needed = " or ".join(r.value for r in roles)
        await self.audit(AuditEntry(principal.actor, action, action, DENIED, {"role": principal.role}))
        if principal.role is None:
            raise AuthenticationError(
                f"{action} needs a key with role {needed}; send `Authorization: Bearer <key>` with "
                "general_settings.master_key or an admin key (admin routes are closed when neither exists)."
            )
        raise PermissionDeniedError(
            f"{action} needs role {needed}, but this key ({principal.actor}) has role {principal.role.value}; "
            "use a key with that role (an admin creates one with POST /admin/keys)."
        )

    async def require_model(self, principal: Principal, model: str) -> None:
        """Refuse (403, audited as a policy denial) a model outside the key's `allowed_models`."""
        key = principal.key
        if key is None or key.allows(model):
            return
        await self.audit(AuditEntry(principal.actor, "policy.model", model, DENIED, {"allowed": key.allowed_models}))
        raise PermissionDeniedError(
            f"This key ({key.id}) may not use model {model!r}; use one of {', '.join(key.allowed_models)} "
            "or ask an admin for a key that allows it.",
            param="model",
        )


def _same(token: str, expected: str) -> bool:
    return hmac.compare_digest(token.encode(), expected.encode())


def _usable(key: VirtualKey) -> Principal:
    if key.revoked_at is not None:
        raise AuthenticationError(f"The key {key.id} was revoked; ask an admin for a new key (POST /admin/keys).")
    if not key.usable(time.time()):
        raise AuthenticationError(f"The key {key.id} expired at {key.expires_at}; ask an admin for a new key.")
    return Principal(key.id, key.role, key)


def _unavailable(exc: KeyStoreError) -> AccessUnavailableError:
    log.error("key store failed; denying: %s", exc)
    return AccessUnavailableError(
        "The gateway cannot check keys right now (key store unavailable), so the request is refused; "
        "retry later (operators: check routeiq_settings.access.key_store)."
    )
