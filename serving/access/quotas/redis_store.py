"""The Redis quota store, shared by every replica: admission and reservation are one Lua script each (a script
runs atomically, so replicas racing on one subject can never pass a limit together); settling is one MULTI/EXEC.

Per subject: a request counter and a token counter per window (expiring), cumulative spend, and a hash of live
holds (hold id → "tokens|usd|expires"; expired holds are dropped by the scripts that read them).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from serving.access.quotas.subjects import BUDGET, RPM, TPM, WINDOW_SECONDS, Hold, QuotaStoreError, Refusal, Subject
from serving.access.quotas.subjects import window as window_of

REDIS_TIMEOUT_SECONDS = 2.0
"""A Redis that does not answer within this is treated as down (503) rather than stalling every request."""
KEYS_PER_SUBJECT = 4

_HELD = """
local function held(key, now)
  local tokens, usd = 0, 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local t, u, e = string.match(all[i + 1], '^([^|]+)|([^|]+)|([^|]+)$')
    if tonumber(e) < now then
      redis.call('HDEL', key, all[i])
    else
      tokens, usd = tokens + tonumber(t), usd + tonumber(u)
    end
  end
  return tokens, usd
end
local function num(key) return tonumber(redis.call('GET', key) or '0') end
"""

# KEYS: per subject (requests, tokens, spend, holds). ARGV: window ttl, now, then per subject rpm, tpm, budget
# ("" = unlimited). A refused request counts nothing.
ADMIT_SCRIPT = (
    _HELD
    + """
local ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = #KEYS / 4
for i = 0, n - 1 do
  local rpm, tpm, budget = tonumber(ARGV[3 + i * 3]), tonumber(ARGV[4 + i * 3]), tonumber(ARGV[5 + i * 3])
  local tokens, usd = held(KEYS[4 + i * 4], now)
  if rpm and num(KEYS[1 + i * 4]) >= rpm then return {i, 'rpm', tostring(num(KEYS[1 + i * 4]))} end
  if tpm and num(KEYS[2 + i * 4]) + tokens >= tpm then return {i, 'tpm', tostring(num(KEYS[2 + i * 4]) + tokens)} end
  if budget and num(KEYS[3 + i * 4]) + usd >= budget then return {i, 'budget', tostring(num(KEYS[3 + i * 4]) + usd)} end
end
for i = 0, n - 1 do
  if redis.call('INCR', KEYS[1 + i * 4]) == 1 then redis.call('EXPIRE', KEYS[1 + i * 4], ttl) end
end
return -1
"""
)

# KEYS as above. ARGV: now, hold id, tokens, usd, expires, holds ttl, then per subject tpm, budget.
RESERVE_SCRIPT = (
    _HELD
    + """
local now, id, want_t, want_u = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 4
local function fits(limit, used, held, asked)
  return used + held + asked <= limit or (held == 0 and used < limit)
end
for i = 0, n - 1 do
  local tpm, budget = tonumber(ARGV[7 + i * 2]), tonumber(ARGV[8 + i * 2])
  local tokens, usd = held(KEYS[4 + i * 4], now)
  local used_t, used_u = num(KEYS[2 + i * 4]), num(KEYS[3 + i * 4])
  if tpm and not fits(tpm, used_t, tokens, want_t) then
    return {i, 'tpm', tostring(used_t), tostring(tokens), tostring(want_t)}
  end
  if budget and not fits(budget, used_u, usd, want_u) then
    return {i, 'budget', tostring(used_u), tostring(usd), tostring(want_u)}
  end
end
for i = 0, n - 1 do
  redis.call('HSET', KEYS[4 + i * 4], id, ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
  redis.call('EXPIRE', KEYS[4 + i * 4], tonumber(ARGV[6]))
end
return -1
"""
)


class RedisQuotaStore:
    """Counters and holds in Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._prefix = prefix
        self._admit = self._client.register_script(ADMIT_SCRIPT)
        self._reserve = self._client.register_script(RESERVE_SCRIPT)

    def _keys(self, subject: Subject, now: float) -> list[str]:
        base = f"{self._prefix}:{subject.id}"
        current = window_of(now)
        return [f"{base}:req:{current}", f"{base}:tok:{current}", f"{base}:usd", f"{base}:holds"]

    async def admit(self, subjects: tuple[Subject, ...], now: float) -> Refusal | None:
        keys = [k for subject in subjects for k in self._keys(subject, now)]
        limits = [_arg(subject.limit(kind)) for subject in subjects for kind in (RPM, TPM, BUDGET)]
        answer = await self._run(self._admit(keys=keys, args=[2 * WINDOW_SECONDS, repr(now), *limits]))
        return _refusal(subjects, answer)

    async def reserve(self, subjects: tuple[Subject, ...], hold: Hold, now: float) -> Refusal | None:
        keys = [k for subject in subjects for k in self._keys(subject, now)]
        limits = [_arg(subject.limit(kind)) for subject in subjects for kind in (TPM, BUDGET)]
        ttl = max(1, int(hold.expires - now) + WINDOW_SECONDS)
        args: list[str | int] = [repr(now), hold.id, str(hold.tokens), repr(hold.usd), repr(hold.expires), ttl, *limits]
        return _refusal(subjects, await self._run(self._reserve(keys=keys, args=args)))

    async def settle(
        self, subjects: tuple[Subject, ...], hold_id: str | None, tokens: int, usd: float, now: float
    ) -> None:
        async def work() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                for subject in subjects:
                    _, token_key, spend_key, holds_key = self._keys(subject, now)
                    if hold_id is not None:
                        pipe.hdel(holds_key, hold_id)
                    pipe.incrby(token_key, tokens)
                    pipe.expire(token_key, 2 * WINDOW_SECONDS)
                    pipe.incrbyfloat(spend_key, usd)
                await pipe.execute()

        await self._run(work())

    async def aclose(self) -> None:
        await self._client.aclose()

    @staticmethod
    async def _run(call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise QuotaStoreError(str(exc)) from exc


def _refusal(subjects: tuple[Subject, ...], answer: object) -> Refusal | None:
    """The script's answer: -1 (passed) or [subject index, limit kind, used, held, asked]."""
    if not isinstance(answer, list):
        return None
    index, kind, *figures = (item.decode() if isinstance(item, bytes) else item for item in answer)
    used, held, asked = ([float(f) for f in figures] + [0.0, 0.0, 0.0])[:3]
    return Refusal(subjects[int(index)], str(kind), used, held, asked)


def _arg(limit: float | None) -> str:
    """A limit as a script argument; "" (Lua `tonumber` gives nil) means unlimited."""
    return "" if limit is None else repr(limit)
