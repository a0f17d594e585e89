"""Quotas as the request path uses them: `Quotas.admit` counts a request (rpm) from its headers alone; the
`Ticket` it returns reserves the request's maximum tokens and cost once the body and the chosen model are known,
and settles with what the call really used — on success, on an error and when the client leaves mid-stream.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from serving.access.keys import VirtualKey
from serving.access.quotas.memory import MemoryQuotaStore
from serving.access.quotas.subjects import (
    BUDGET,
    KEY,
    RPM,
    TEAM,
    Hold,
    QuotaStore,
    QuotaStoreError,
    Refusal,
    Subject,
    seconds_left,
)
from serving.access.settings import TeamLimits
from serving.exceptions import AccessUnavailableError, QuotaExceededError

log = logging.getLogger("routeiq.quotas")

DEFAULT_HOLD_SECONDS = 660.0
"""How long a reservation holds at most: the default total upstream deadline (600 s) and a minute to settle."""


@dataclass(frozen=True)
class Quotas:
    """The store and the team limits; turns a key into subjects and a refusal into an error."""

    store: QuotaStore = field(default_factory=MemoryQuotaStore)
    teams: Mapping[str, TeamLimits] = field(default_factory=dict)
    hold_seconds: float = DEFAULT_HOLD_SECONDS

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
        """A ticket for this request, or `QuotaExceededError` (429) / `AccessUnavailableError` (503)."""
        subjects = self.subjects(key)
        if not subjects:
            return Ticket(self, ())
        refusal = await _asked(self.store.admit(subjects, now))
        if refusal is not None:
            raise exceeded(refusal, now)
        return Ticket(self, subjects)


@dataclass
class Ticket:
    """An admitted request: reserve its maximum before the upstream call, settle it exactly once afterwards."""

    quotas: Quotas
    subjects: tuple[Subject, ...]
    hold: Hold | None = None
    settled: bool = False

    @property
    def metered(self) -> bool:
        """Whether any subject limits tokens or spend (otherwise nothing is reserved or charged)."""
        return any(subject.metered() for subject in self.subjects)

    async def reserve(self, tokens: int, usd: float) -> None:
        """Hold `tokens` and `usd` (the request's maximum) against every subject's tpm and budget, or refuse (429):
        concurrent requests can then never spend past a limit together."""
        if not self.metered or self.hold is not None:
            return
        now = time.time()
        hold = Hold(secrets.token_hex(8), tokens, usd, now + self.quotas.hold_seconds)
        refusal = await _asked(self.quotas.store.reserve(self.subjects, hold, now))
        if refusal is not None:
            raise exceeded(refusal, now)
        self.hold = hold

    async def settle(self, tokens: int, usd: float) -> None:
        """Release the hold and charge what was used (once; later calls do nothing). A failing store is logged: the
        answer is already paid for, and the store refuses the next call (503) while it stays down."""
        if self.settled or not self.metered:
            return
        self.settled = True
        hold_id = self.hold.id if self.hold is not None else None
        try:
            await self.quotas.store.settle(self.subjects, hold_id, tokens, usd, time.time())
        except QuotaStoreError as exc:
            log.error("quota store failed; usage of %s not charged: %s", self.subjects[0].id, exc)


async def _asked(call: object) -> Refusal | None:
    """The store's answer, or 503 when the store cannot give one (fail closed)."""
    try:
        answer: Refusal | None = await call  # type: ignore[misc]
    except QuotaStoreError as exc:
        log.error("quota store failed; denying: %s", exc)
        raise AccessUnavailableError(
            "The gateway cannot check quotas right now (quota store unavailable), so the request is refused; "
            "retry later (operators: check routeiq_settings.access.quotas)."
        ) from exc
    return answer


def exceeded(refusal: Refusal, now: float) -> QuotaExceededError:
    """The 429 for `refusal`: which limit, what is left, and what to change."""
    subject, kind = refusal.subject, refusal.kind
    who = f"This key ({subject.name})" if subject.scope == KEY else f"The team {subject.name!r}"
    name = "max_budget_usd" if kind == BUDGET else kind
    setting = (
        f"the key's {name}" if subject.scope == KEY else f"routeiq_settings.access.quotas.teams.{subject.name}.{name}"
    )
    limit = subject.limit(kind) or 0.0
    if kind == BUDGET:
        if refusal.asked and refusal.used + refusal.held < limit:
            left = limit - refusal.used - refusal.held
            return QuotaExceededError(
                f"{who} has ${left:.6f} of its budget of ${limit} left (spent or held by requests in flight), less "
                f"than this request may cost (${refusal.asked:.6f} at its max_tokens); lower max_tokens, wait for "
                f"requests in flight to finish, or ask an admin to raise {setting}."
            )
        return QuotaExceededError(
            f"{who} has spent its budget of ${subject.budget_usd}; further requests are refused until an admin "
            f"raises {setting} (or issues a new key)."
        )
    wait = seconds_left(now)
    unit = "requests" if kind == RPM else "tokens"
    if refusal.asked:
        return QuotaExceededError(
            f"{who} has used or reserved {refusal.used + refusal.held:g} of its {limit:g} tokens per minute, and "
            f"this request may use {refusal.asked:g} (prompt + max_tokens); retry after {wait} s (Retry-After), "
            f"lower max_tokens, or ask an admin to raise {setting}.",
            retry_after=wait,
        )
    used = "has used" if kind == RPM else "has used (or holds for requests in flight)"
    return QuotaExceededError(
        f"{who} {used} its {limit:g} {unit} per minute; retry after {wait} s "
        f"(Retry-After), send less, or ask an admin to raise {setting}.",
        retry_after=wait,
    )
