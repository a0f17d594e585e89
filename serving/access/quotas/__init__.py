"""Per-key and per-team quotas (requests and tokens per fixed 60-second window) and budgets (cumulative USD):
a request is counted before its body is read, reserves its maximum before the upstream call and is settled with
what it used. Three stores: this process, a sqlite file (spend survives restarts), or Redis shared by replicas. A
store that cannot answer denies with 503 (fail closed); nothing here decides routes.
"""

from __future__ import annotations

from serving.access.quotas.memory import MemoryQuotaStore
from serving.access.quotas.redis_store import RedisQuotaStore
from serving.access.quotas.sqlite_store import SqliteQuotaStore
from serving.access.quotas.subjects import (
    BUDGET,
    KEY,
    RPM,
    TEAM,
    TPM,
    WINDOW_SECONDS,
    Hold,
    QuotaStore,
    QuotaStoreError,
    Refusal,
    Subject,
    fits,
    seconds_left,
    window,
)
from serving.access.quotas.tickets import Quotas, Ticket, exceeded
from serving.access.settings import QuotaSettings

__all__ = [
    "BUDGET",
    "KEY",
    "RPM",
    "TEAM",
    "TPM",
    "WINDOW_SECONDS",
    "Hold",
    "MemoryQuotaStore",
    "QuotaStore",
    "QuotaStoreError",
    "Quotas",
    "RedisQuotaStore",
    "Refusal",
    "SqliteQuotaStore",
    "Subject",
    "Ticket",
    "exceeded",
    "fits",
    "open_quota_store",
    "seconds_left",
    "window",
]


def open_quota_store(settings: QuotaSettings) -> QuotaStore:
    """The configured store; Redis connects on first use, not here."""
    if settings.backend == "redis":
        return RedisQuotaStore(settings.redis_url, settings.key_prefix)
    if settings.backend == "sqlite":
        return SqliteQuotaStore(settings.path)
    return MemoryQuotaStore()
