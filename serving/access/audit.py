"""The audit log: one row per admin call, key change, promotion seen and policy denial. Embedded sqlite by
default, PostgreSQL when a DSN is set. Writes run in a worker thread; this module decides nothing.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from serving.access.settings import AuditSettings
from serving.security.scrub import scrub

ALLOWED = "allowed"
DENIED = "denied"
FAILED = "failed"
MASTER = "master"
"""The actor name of the configured master key."""


class AuditError(RuntimeError):
    """An entry could not be written; with `audit.required` the audited action is refused."""


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to what, and how it ended; `details` is JSON-serialisable."""

    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def row(self) -> tuple[float, str, str, str, str, str]:
        """The stored columns; target and details pass the secret scrubber (they may quote client input)."""
        details = scrub(json.dumps(self.details, default=str))
        return (self.time, self.actor, self.action, scrub(self.target), self.outcome, details)


class AuditLog(Protocol):
    """Where entries go. `record` raises `AuditError` when the entry is not stored."""

    async def record(self, entry: AuditEntry) -> None: ...

    async def entries(self) -> list[AuditEntry]:
        """Every entry, oldest first (for operators and tests)."""


def _create(table: str, time_type: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (time {time_type} NOT NULL, actor TEXT NOT NULL, "
        "action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, details TEXT NOT NULL)"
    )


def _entry(row: Any) -> AuditEntry:
    when, actor, action, target, outcome, details = row
    return AuditEntry(actor, action, target, outcome, json.loads(details), float(when))


class SqliteAuditLog:
    """Entries in the sqlite file at `path`, table `table` (validated by `AuditSettings`)."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table

    async def record(self, entry: AuditEntry) -> None:
        await asyncio.to_thread(self._record, entry)

    async def entries(self) -> list[AuditEntry]:
        return await asyncio.to_thread(self._entries)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=5.0)
        conn.execute(_create(self.table, "REAL"))
        return conn

    def _record(self, entry: AuditEntry) -> None:
        try:
            with closing(self._connect()) as conn, conn:
                conn.execute(f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?, ?)", entry.row())  # noqa: S608
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(f"audit log {self.path} is not writable: {exc}") from exc

    def _entries(self) -> list[AuditEntry]:
        try:
            with closing(self._connect()) as conn:
                rows = conn.execute(f"SELECT * FROM {self.table} ORDER BY time, rowid").fetchall()  # noqa: S608
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(f"audit log {self.path} is not readable: {exc}") from exc
        return [_entry(row) for row in rows]


class PostgresAuditLog:
    """Entries in PostgreSQL at `dsn`, table `table`; one short connection per write (admin-rate traffic)."""

    def __init__(self, dsn: str, table: str) -> None:
        self.dsn = dsn
        self.table = table

    async def record(self, entry: AuditEntry) -> None:
        await asyncio.to_thread(self._record, entry)

    async def entries(self) -> list[AuditEntry]:
        return await asyncio.to_thread(self._entries)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg  # imported on first use: a gateway on the sqlite default never loads it

        try:
            with psycopg.connect(self.dsn, connect_timeout=5) as conn:
                conn.execute(_create(self.table, "DOUBLE PRECISION"))
                cursor = conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise AuditError(f"PostgreSQL audit log ({self.table}) failed: {exc}") from exc

    def _record(self, entry: AuditEntry) -> None:
        self._execute(f"INSERT INTO {self.table} VALUES (%s, %s, %s, %s, %s, %s)", entry.row())  # noqa: S608

    def _entries(self) -> list[AuditEntry]:
        return [_entry(row) for row in self._execute(f"SELECT * FROM {self.table} ORDER BY time")]  # noqa: S608


def open_audit_log(settings: AuditSettings) -> AuditLog:
    """The configured backend; nothing is connected until the first entry."""
    if settings.dsn:
        return PostgresAuditLog(settings.dsn, settings.table)
    return SqliteAuditLog(settings.path, settings.table)
