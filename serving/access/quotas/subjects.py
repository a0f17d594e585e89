"""What every quota store shares: who a limit belongs to, the store protocol, windows, and the one admission
rule for tokens and spend. No storage here.

Tokens and spend are checked against what is used *and* what admitted requests still hold: each request reserves
its maximum (estimated prompt + its output bound, priced) before its upstream call and settles it afterwards with
what it really used, so concurrent requests can never spend past a limit together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 60
RPM, TPM, BUDGET = "rpm", "tpm", "budget"
KEY, TEAM = "key", "team"


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

    def metered(self) -> bool:
        """Whether tokens or spend are limited (only then does a request reserve anything)."""
        return self.tpm is not None or self.budget_usd is not None

    def limit(self, kind: str) -> float | None:
        return {RPM: self.rpm, TPM: self.tpm, BUDGET: self.budget_usd}[kind]


@dataclass(frozen=True)
class Hold:
    """One admitted request's reservation: its maximum tokens and cost, until `expires` (unix seconds) at the
    latest, so a replica that dies mid-request cannot hold a limit for ever."""

    id: str
    tokens: int
    usd: float
    expires: float


@dataclass(frozen=True)
class Refusal:
    """Which subject refused, by which limit (`rpm`, `tpm` or `budget`), and what it had used, held and been
    asked for (0 for an rpm refusal or an admission check, which asks for nothing)."""

    subject: Subject
    kind: str
    used: float = 0.0
    held: float = 0.0
    asked: float = 0.0


def fits(limit: float, used: float, held: float, asked: float) -> bool:
    """Whether a request asking `asked` may go ahead: its maximum fits beside what is used and held, or it is
    alone (nothing held) and the limit is not yet reached. The second case lets one request at a time run past a
    limit it could not fit at all (a tpm below its `max_tokens`); that request is the only overshoot possible."""
    return used + held + asked <= limit or (held == 0 and used < limit)


class QuotaStore(Protocol):
    """Counters and holds per subject. Every method raises `QuotaStoreError` when the store cannot answer."""

    async def admit(self, subjects: tuple[Subject, ...], now: float) -> Refusal | None:
        """Count one request for every subject if none is at a limit (used + held); else count nothing."""

    async def reserve(self, subjects: tuple[Subject, ...], hold: Hold, now: float) -> Refusal | None:
        """Record `hold` for every subject if it `fits` each one's tpm and budget; else record nothing."""

    async def settle(
        self, subjects: tuple[Subject, ...], hold_id: str | None, tokens: int, usd: float, now: float
    ) -> None:
        """Drop the hold (if any) and add the tokens (this window) and cost (for good) really used."""

    async def aclose(self) -> None:
        """Release connections."""


def window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def seconds_left(now: float) -> int:
    """Whole seconds until the current window ends (at least 1): the `Retry-After` of an rpm/tpm refusal."""
    return max(1, math.ceil((window(now) + 1) * WINDOW_SECONDS - now))
