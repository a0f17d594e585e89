"""The embedded key store: one sqlite file, keys stored as HMAC digests, found by a digest prefix.

Each call opens its own short connection in a worker thread (`asyncio.to_thread`), so sqlite never blocks
the event loop and threads never share a connection.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from serving.access.keys import KeyStoreError, NewKey, Role, VirtualKey, digest, lookup_id

T = TypeVar("T")

COLUMNS = "id, team, role, allowed_models, max_budget_usd, rpm, tpm, expires_at, revoked_at, created_at"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, lookup TEXT NOT NULL, digest TEXT NOT NULL, "
    "team TEXT, role TEXT NOT NULL, allowed_models TEXT NOT NULL, max_budget_usd REAL, rpm INTEGER, "
    "tpm INTEGER, expires_at REAL, revoked_at REAL, created_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS keys_lookup ON keys (lookup)",
)
PEPPER = "pepper"


class SqliteKeyStore:
    """Keys in the sqlite file at `path`; `secret` is the HMAC pepper (None: a random one kept in the file)."""

    def __init__(self, path: Path, secret: str | None = None) -> None:
        self.path = path
        self._secret = secret.encode() if secret is not None else None

    async def add(self, key: NewKey) -> None:
        await self._run(self._add, key)

    async def find(self, secret: str) -> VirtualKey | None:
        return await self._run(self._find, secret)

    async def list_keys(self) -> list[VirtualKey]:
        return await self._run(self._list)

    async def revoke(self, key_id: str, when: float) -> VirtualKey | None:
        return await self._run(self._revoke, key_id, when)

    async def has_keys(self) -> bool:
        return await self._run(self._has_keys)

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(work, *args)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction; any sqlite or file error becomes `KeyStoreError` (fail closed)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=5.0)) as conn, conn:
                for statement in SCHEMA:
                    conn.execute(statement)
                yield conn
        except (sqlite3.Error, OSError) as exc:
            raise KeyStoreError(f"key store {self.path} is unusable: {exc}") from exc

    def _pepper(self, conn: sqlite3.Connection) -> bytes:
        if self._secret is not None:
            return self._secret
        conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (PEPPER, secrets.token_hex(32)))
        row = conn.execute("SELECT value FROM meta WHERE name = ?", (PEPPER,)).fetchone()
        return bytes.fromhex(row[0])

    def _add(self, key: NewKey) -> None:
        r = key.record
        with self._db() as conn:
            hashed = digest(key.secret, self._pepper(conn))
            conn.execute(
                f"INSERT INTO keys (lookup, digest, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    lookup_id(hashed),
                    hashed,
                    r.id,
                    r.team,
                    r.role.value,
                    json.dumps(list(r.allowed_models)),
                    r.max_budget_usd,
                    r.rpm,
                    r.tpm,
                    r.expires_at,
                    r.revoked_at,
                    r.created_at,
                ),
            )

    def _find(self, secret: str) -> VirtualKey | None:
        with self._db() as conn:
            hashed = digest(secret, self._pepper(conn))
            rows = conn.execute(f"SELECT digest, {COLUMNS} FROM keys WHERE lookup = ?", (lookup_id(hashed),))  # noqa: S608
            for stored, *fields in rows.fetchall():
                if hmac.compare_digest(stored, hashed):
                    return _record(fields)
        return None

    def _list(self) -> list[VirtualKey]:
        with self._db() as conn:
            rows = conn.execute(f"SELECT {COLUMNS} FROM keys ORDER BY created_at, id").fetchall()  # noqa: S608
        return [_record(row) for row in rows]

    def _revoke(self, key_id: str, when: float) -> VirtualKey | None:
        with self._db() as conn:
            conn.execute("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (when, key_id))
            row = conn.execute(f"SELECT {COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()  # noqa: S608
        return _record(row) if row is not None else None

    def _has_keys(self) -> bool:
        with self._db() as conn:
            return conn.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None


def _record(row: Any) -> VirtualKey:
    key_id, team, role, allowed, budget, rpm, tpm, expires_at, revoked_at, created_at = row
    return VirtualKey(
        id=key_id,
        team=team,
        role=Role(role),
        allowed_models=tuple(json.loads(allowed)),
        max_budget_usd=budget,
        rpm=rpm,
        tpm=tpm,
        expires_at=expires_at,
        revoked_at=revoked_at,
        created_at=created_at,
    )
