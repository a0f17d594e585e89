"""The sqlite quota store: spend survives restarts, and gateways on one host can share the file. Each call is one
`BEGIN IMMEDIATE` transaction (check every subject, then count or hold), run in a worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from serving.access.quotas.subjects import (
    BUDGET,
    RPM,
    TPM,
    Hold,
    QuotaStoreError,
    Refusal,
    Subject,
    fits,
    window,
)

SPEND_WINDOW = -1
"""The window of spend, which never resets."""
SQLITE_TIMEOUT_SECONDS = 5.0
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS quota_counters "
    "(subject TEXT NOT NULL, kind TEXT NOT NULL, win INTEGER NOT NULL, value REAL NOT NULL, "
    "PRIMARY KEY (subject, kind, win))",
    "CREATE TABLE IF NOT EXISTS quota_holds "
    "(subject TEXT NOT NULL, hold TEXT NOT NULL, tokens INTEGER NOT NULL, usd REAL NOT NULL, "
    "expires REAL NOT NULL, PRIMARY KEY (subject, hold))",
)


class SqliteQuotaStore:
    """Counters and holds in a sqlite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def admit(self, subjects: tuple[Subject, ...], now: float) -> Refusal | None:
        return await asyncio.to_thread(self._admit, subjects, now)

    async def reserve(self, subjects: tuple[Subject, ...], hold: Hold, now: float) -> Refusal | None:
        return await asyncio.to_thread(self._reserve, subjects, hold, now)

    async def settle(
        self, subjects: tuple[Subject, ...], hold_id: str | None, tokens: int, usd: float, now: float
    ) -> None:
        await asyncio.to_thread(self._settle, subjects, hold_id, tokens, usd, window(now))

    async def aclose(self) -> None:
        return None

    def _admit(self, subjects: tuple[Subject, ...], now: float) -> Refusal | None:
        current = window(now)
        with self._transaction(now) as conn:
            conn.execute("DELETE FROM quota_counters WHERE win >= 0 AND win < ?", (current - 1,))
            for subject in subjects:
                tokens, usd = _held(conn, subject)
                held = {RPM: 0.0, TPM: float(tokens), BUDGET: usd}
                for kind in (RPM, TPM, BUDGET):
                    limit = subject.limit(kind)
                    used = _used(conn, subject, kind, current) + held[kind]
                    if limit is not None and used >= limit:
                        return Refusal(subject, kind, used=used)
            for subject in subjects:
                _add(conn, subject, RPM, current, 1)
        return None

    def _reserve(self, subjects: tuple[Subject, ...], hold: Hold, now: float) -> Refusal | None:
        current = window(now)
        with self._transaction(now) as conn:
            for subject in subjects:
                tokens, usd = _held(conn, subject)
                for kind, held, asked in ((TPM, float(tokens), float(hold.tokens)), (BUDGET, usd, hold.usd)):
                    limit = subject.limit(kind)
                    used = _used(conn, subject, kind, current)
                    if limit is not None and not fits(limit, used, held, asked):
                        return Refusal(subject, kind, used, held, asked)
            for subject in subjects:
                conn.execute(
                    "INSERT INTO quota_holds VALUES (?, ?, ?, ?, ?)",
                    (subject.id, hold.id, hold.tokens, hold.usd, hold.expires),
                )
        return None

    def _settle(
        self, subjects: tuple[Subject, ...], hold_id: str | None, tokens: int, usd: float, current: int
    ) -> None:
        with self._transaction() as conn:
            for subject in subjects:
                if hold_id is not None:
                    conn.execute("DELETE FROM quota_holds WHERE subject = ? AND hold = ?", (subject.id, hold_id))
                _add(conn, subject, TPM, current, tokens)
                _add(conn, subject, BUDGET, SPEND_WINDOW, usd)

    @contextmanager
    def _transaction(self, now: float | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before the first read, so concurrent admissions cannot both pass; holds
        past their expiry (a gateway that died mid-request) are dropped first."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT_SECONDS, isolation_level=None)) as conn:
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if now is not None:
                        conn.execute("DELETE FROM quota_holds WHERE expires < ?", (now,))
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise QuotaStoreError(f"quota store {self.path} is unusable: {exc}") from exc


def _used(conn: sqlite3.Connection, subject: Subject, kind: str, current: int) -> float:
    row = conn.execute(
        "SELECT value FROM quota_counters WHERE subject = ? AND kind = ? AND win = ?",
        (subject.id, kind, SPEND_WINDOW if kind == BUDGET else current),
    ).fetchone()
    return float(row[0]) if row else 0.0


def _held(conn: sqlite3.Connection, subject: Subject) -> tuple[int, float]:
    row = conn.execute(
        "SELECT COALESCE(SUM(tokens), 0), COALESCE(SUM(usd), 0.0) FROM quota_holds WHERE subject = ?", (subject.id,)
    ).fetchone()
    return int(row[0]), float(row[1])


def _add(conn: sqlite3.Connection, subject: Subject, kind: str, win: int, amount: float) -> None:
    conn.execute(
        "INSERT INTO quota_counters VALUES (?, ?, ?, ?) "
        "ON CONFLICT (subject, kind, win) DO UPDATE SET value = value + excluded.value",
        (subject.id, kind, win, amount),
    )
