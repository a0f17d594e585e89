"""Per-key and per-team quotas (requests and tokens per fixed 60-second window) and budgets (cumulative USD):
admitted atomically before the upstream call, charged after it. Three stores: this process, a sqlite file
(spend survives restarts), or Redis shared by replicas. A store that cannot answer denies with 503 (fail
closed); nothing here decides routes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from serving.access.keys import VirtualKey
from serving.access.settings import QuotaSettings, TeamLimits
from serving.exceptions import AccessUnavailableError, QuotaExceededError

log = logging.getLogger("routeiq.quotas")

WINDOW_SECONDS = 60
RPM, TPM, BUDGET = "rpm", "tpm", "budget"
KEY, TEAM = "key", "team"
SPEND_WINDOW = -1
"""The sqlite store's window for spend, which never resets."""
SQLITE_TIMEOUT_SECONDS = 5.0
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS quota_counters "
    "(subject TEXT NOT NULL, kind TEXT NOT NULL, win INTEGER NOT NULL, value REAL NOT NULL, "
    "PRIMARY KEY (subject, kind, win))"
)
REDIS_TIMEOUT_SECONDS = 2.0
"""A Redis that does not answer within this is treated as down (503) rather than stalling every request."""

# Checks every subject first and counts the request only if all pass, so a refused request uses no quota
# and replicas racing on the same window can never admit more than the limit (a script runs atomically).
ADMIT_SCRIPT = """
local ttl = tonumber(ARGV[1])
local n = #KEYS / 3
for i = 0, n - 1 do
  local limits = {tonumber(ARGV[2 + i * 3]), tonumber(ARGV[3 + i * 3]), tonumber(ARGV[4 + i * 3])}
  local names = {'rpm', 'tpm', 'budget'}
  for j = 1, 3 do
    if limits[j] and tonumber(redis.call('GET', KEYS[j + i * 3]) or '0') >= limits[j] then
      return {i, names[j]}
    end
  end
end
for i = 0, n - 1 do
  if redis.call('INCR', KEYS[1 + i * 3]) == 1 then redis.call('EXPIRE', KEYS[1 + i * 3], ttl) end
end
return -1
"""


class QuotaStoreError(RuntimeError):
    """The quota store cannot answer; callers must deny (fail closed), never allow."""


@dataclass(frozen=True)
class Subject:
    """Who a limit belongs to (a key or a team) and its limits; None means unlimited."""

    scope: str
    name: str
    rpm: int | None
    tpm: int | None
    budget_usd: float | None

    @property
    def id(self) -> str:
        return f"{self.scope}:{self.name}"

    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.budget_usd is not None

    def limit(self, kind: str) -> float | None:
        return {RPM: self.rpm, TPM: self.tpm, BUDGET: self.budget_usd}[kind]


@dataclass(frozen=True)
class Refusal:
    """Which subject refused and by which limit (`rpm`, `tpm` or `budget`)."""

    subject: Subject
    kind: str


class QuotaStore(Protocol):
    """Counters per subject. Every method raises `QuotaStoreError` when the store cannot answer."""

    async def admit(self, subjects: Sequence[Subject], now: float) -> Refusal | None:
        """Count one request for every subject if none is over a limit; else count nothing and say who is."""

    async def charge(self, subjects: Sequence[Subject], tokens: int, cost_usd: float, now: float) -> None:
        """Add a finished call's tokens (this window) and cost (for good) to every subject."""

    async def aclose(self) -> None:
        """Release connections."""


def window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def seconds_left(now: float) -> int:
    """Whole seconds until the current window ends (at least 1): the `Retry-After` of an rpm/tpm refusal."""
    return max(1, math.ceil((window(now) + 1) * WINDOW_SECONDS - now))


@dataclass
class MemoryQuotaStore:
    """Counters in this process: exact for one replica. Atomic because nothing awaits between check and count."""

    _window: int = -1
    _requests: dict[str, int] = field(default_factory=dict)
    _tokens: dict[str, int] = field(default_factory=dict)
    _spend: dict[str, float] = field(default_factory=dict)

    async def admit(self, subjects: Sequence[Subject], now: float) -> Refusal | None:
        self._roll(now)
        for subject in subjects:
            used: dict[str, float] = {
                RPM: self._requests.get(subject.id, 0),
                TPM: self._tokens.get(subject.id, 0),
                BUDGET: self._spend.get(subject.id, 0.0),
            }
            for kind, count in used.items():
                limit = subject.limit(kind)
                if limit is not None and count >= limit:
                    return Refusal(subject, kind)
        for subject in subjects:
            self._requests[subject.id] = self._requests.get(subject.id, 0) + 1
        return None

    async def charge(self, subjects: Sequence[Subject], tokens: int, cost_usd: float, now: float) -> None:
        self._roll(now)
        for subject in subjects:
            self._tokens[subject.id] = self._tokens.get(subject.id, 0) + tokens
            self._spend[subject.id] = self._spend.get(subject.id, 0.0) + cost_usd

    async def aclose(self) -> None:
        return None

    def _roll(self, now: float) -> None:
        """A new window starts every subject's rpm and tpm at zero (spend is cumulative)."""
        current = window(now)
        if current != self._window:
            self._window = current
            self._requests.clear()
            self._tokens.clear()


class RedisQuotaStore:
    """Counters in Redis, shared by every replica: admission is one Lua script, charging one MULTI/EXEC."""

    def __init__(self, url: str, prefix: str) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._prefix = prefix
        self._admit = self._client.register_script(ADMIT_SCRIPT)

    def _keys(self, subject: Subject, now: float) -> list[str]:
        base = f"{self._prefix}:{subject.id}"
        return [f"{base}:req:{window(now)}", f"{base}:tok:{window(now)}", f"{base}:usd"]

    async def admit(self, subjects: Sequence[Subject], now: float) -> Refusal | None:
        keys = [k for subject in subjects for k in self._keys(subject, now)]
        limits = [_arg(subject.limit(kind)) for subject in subjects for kind in (RPM, TPM, BUDGET)]
        try:
            answer = await self._admit(keys=keys, args=[2 * WINDOW_SECONDS, *limits])
        except (RedisError, OSError) as exc:
            raise QuotaStoreError(str(exc)) from exc
        if not isinstance(answer, list):
            return None
        index, kind = answer
        return Refusal(subjects[int(index)], kind.decode() if isinstance(kind, bytes) else str(kind))

    async def charge(self, subjects: Sequence[Subject], tokens: int, cost_usd: float, now: float) -> None:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for subject in subjects:
                    _, token_key, spend_key = self._keys(subject, now)
                    pipe.incrby(token_key, tokens)
                    pipe.expire(token_key, 2 * WINDOW_SECONDS)
                    pipe.incrbyfloat(spend_key, cost_usd)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise QuotaStoreError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()


class SqliteQuotaStore:
    """Counters in a sqlite file: spend survives restarts, and gateways on one host can share the file. Each call
    is one `BEGIN IMMEDIATE` transaction (check every subject, then count), run in a worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def admit(self, subjects: Sequence[Subject], now: float) -> Refusal | None:
        return await asyncio.to_thread(self._admit, subjects, window(now))

    async def charge(self, subjects: Sequence[Subject], tokens: int, cost_usd: float, now: float) -> None:
        await asyncio.to_thread(self._charge, subjects, tokens, cost_usd, window(now))

    async def aclose(self) -> None:
        return None

    def _admit(self, subjects: Sequence[Subject], current: int) -> Refusal | None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM quota_counters WHERE win >= 0 AND win < ?", (current - 1,))
            for subject in subjects:
                for kind in (RPM, TPM, BUDGET):
                    limit = subject.limit(kind)
                    if limit is not None and _used(conn, subject, kind, current) >= limit:
                        return Refusal(subject, kind)
            for subject in subjects:
                _add(conn, subject, RPM, current, 1)
        return None

    def _charge(self, subjects: Sequence[Subject], tokens: int, cost_usd: float, current: int) -> None:
        with self._transaction() as conn:
            for subject in subjects:
                _add(conn, subject, TPM, current, tokens)
                _add(conn, subject, BUDGET, SPEND_WINDOW, cost_usd)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before the first read, so concurrent admissions cannot both pass."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT_SECONDS, isolation_level=None)) as conn:
                conn.execute(SQLITE_SCHEMA)
                conn.execute("BEGIN IMMEDIATE")
                try:
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


def _add(conn: sqlite3.Connection, subject: Subject, kind: str, win: int, amount: float) -> None:
    conn.execute(
        "INSERT INTO quota_counters VALUES (?, ?, ?, ?) "
        "ON CONFLICT (subject, kind, win) DO UPDATE SET value = value + excluded.value",
        (subject.id, kind, win, amount),
    )


def _arg(limit: float | None) -> str:
    """A limit as a script argument; "" (Lua `tonumber` gives nil) means unlimited."""
    return "" if limit is None else repr(limit)


def open_quota_store(settings: QuotaSettings) -> QuotaStore:
    """The configured store; Redis connects on first use, not here."""
    if settings.backend == "redis":
        return RedisQuotaStore(settings.redis_url, settings.key_prefix)
    if settings.backend == "sqlite":
        return SqliteQuotaStore(settings.path)
    return MemoryQuotaStore()


@dataclass(frozen=True)
class Ticket:
    """An admitted request's subjects, to charge its usage to once the answer is known."""

    quotas: Quotas
    subjects: tuple[Subject, ...]

    async def charge(self, tokens: int, cost_usd: float) -> None:
        """Record usage; a failing store is logged (the answer is already paid for) and refuses the next call."""
        if not self.subjects:
            return
        try:
            await self.quotas.store.charge(self.subjects, tokens, cost_usd, time.time())
        except QuotaStoreError as exc:
            log.error("quota store failed; usage of %s not charged: %s", self.subjects[0].id, exc)


@dataclass(frozen=True)
class Quotas:
    """The store and the team limits; turns a key into subjects and a refusal into an error."""

    store: QuotaStore = field(default_factory=MemoryQuotaStore)
    teams: Mapping[str, TeamLimits] = field(default_factory=dict)

    def subjects(self, key: VirtualKey | None) -> tuple[Subject, ...]:
        """The limited subjects of `key` (none for the master key, anonymous callers or unlimited keys)."""
        if key is None:
            return ()
        found = [Subject(KEY, key.id, key.rpm, key.tpm, key.max_budget_usd)]
        team = self.teams.get(key.team) if key.team is not None else None
        if team is not None and key.team is not None:
            found.append(Subject(TEAM, key.team, team.rpm, team.tpm, team.max_budget_usd))
        return tuple(s for s in found if s.limited())

    async def admit(self, key: VirtualKey | None, now: float) -> Ticket:
        """A ticket to charge, or `QuotaExceededError` (429) / `AccessUnavailableError` (503)."""
        subjects = self.subjects(key)
        if not subjects:
            return Ticket(self, ())
        try:
            refusal = await self.store.admit(subjects, now)
        except QuotaStoreError as exc:
            log.error("quota store failed; denying: %s", exc)
            raise AccessUnavailableError(
                "The gateway cannot check quotas right now (quota store unavailable), so the request is refused; "
                "retry later (operators: check routeiq_settings.access.quotas.redis_url)."
            ) from exc
        if refusal is not None:
            raise _exceeded(refusal, now)
        return Ticket(self, subjects)


def _exceeded(refusal: Refusal, now: float) -> QuotaExceededError:
    subject, kind = refusal.subject, refusal.kind
    who = f"This key ({subject.name})" if subject.scope == KEY else f"The team {subject.name!r}"
    setting = (
        f"the key's {'max_budget_usd' if kind == BUDGET else kind}"
        if subject.scope == KEY
        else f"routeiq_settings.access.quotas.teams.{subject.name}.{'max_budget_usd' if kind == BUDGET else kind}"
    )
    if kind == BUDGET:
        return QuotaExceededError(
            f"{who} has spent its budget of ${subject.budget_usd}; further requests are refused until an admin "
            f"raises {setting} (or issues a new key)."
        )
    wait = seconds_left(now)
    unit = "requests" if kind == RPM else "tokens"
    return QuotaExceededError(
        f"{who} has used its {subject.limit(kind):g} {unit} per minute; retry after {wait} s "
        f"(Retry-After), send less, or ask an admin to raise {setting}.",
        retry_after=wait,
    )
