"""The in-process quota store: exact for one replica, forgotten on restart. Atomic because nothing awaits
between a check and its count."""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.access.quotas.subjects import BUDGET, RPM, TPM, Hold, Refusal, Subject, fits, window


@dataclass
class MemoryQuotaStore:
    """Counters and holds in this process."""

    _window: int = -1
    _requests: dict[str, int] = field(default_factory=dict)
    _tokens: dict[str, int] = field(default_factory=dict)
    _spend: dict[str, float] = field(default_factory=dict)
    _holds: dict[str, dict[str, Hold]] = field(default_factory=dict)

    async def admit(self, subjects: tuple[Subject, ...], now: float) -> Refusal | None:
        self._roll(now)
        for subject in subjects:
            tokens, usd = self._held(subject.id, now)
            used: dict[str, float] = {RPM: self._requests.get(subject.id, 0)}
            used[TPM] = self._tokens.get(subject.id, 0) + tokens
            used[BUDGET] = self._spend.get(subject.id, 0.0) + usd
            for kind, count in used.items():
                limit = subject.limit(kind)
                if limit is not None and count >= limit:
                    return Refusal(subject, kind, used=count)
        for subject in subjects:
            self._requests[subject.id] = self._requests.get(subject.id, 0) + 1
        return None

    async def reserve(self, subjects: tuple[Subject, ...], hold: Hold, now: float) -> Refusal | None:
        self._roll(now)
        for subject in subjects:
            tokens, usd = self._held(subject.id, now)
            checks = (
                (TPM, self._tokens.get(subject.id, 0), tokens, hold.tokens),
                (BUDGET, self._spend.get(subject.id, 0.0), usd, hold.usd),
            )
            for kind, used, held, asked in checks:
                limit = subject.limit(kind)
                if limit is not None and not fits(limit, used, held, asked):
                    return Refusal(subject, kind, used, held, asked)
        for subject in subjects:
            self._holds.setdefault(subject.id, {})[hold.id] = hold
        return None

    async def settle(
        self, subjects: tuple[Subject, ...], hold_id: str | None, tokens: int, usd: float, now: float
    ) -> None:
        self._roll(now)
        for subject in subjects:
            if hold_id is not None:
                self._holds.get(subject.id, {}).pop(hold_id, None)
            self._tokens[subject.id] = self._tokens.get(subject.id, 0) + tokens
            self._spend[subject.id] = self._spend.get(subject.id, 0.0) + usd

    async def aclose(self) -> None:
        return None

    def _held(self, subject_id: str, now: float) -> tuple[int, float]:
        """Tokens and USD the subject's live holds reserve (expired holds are dropped)."""
        holds = self._holds.get(subject_id)
        if not holds:
            return 0, 0.0
        for hold_id in [h.id for h in holds.values() if h.expires < now]:
            del holds[hold_id]
        return sum(h.tokens for h in holds.values()), sum(h.usd for h in holds.values())

    def _roll(self, now: float) -> None:
        """A new window starts every subject's rpm and tpm at zero (spend and holds carry on)."""
        current = window(now)
        if current != self._window:
            self._window = current
            self._requests.clear()
            self._tokens.clear()
