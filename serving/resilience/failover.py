"""Retries and fallbacks across deployments, behind one circuit breaker per deployment name.

`Failover` wraps `Providers`: a call goes to the requested name, is retried there on an upstream failure, then
moves down its fallback chain; names whose circuit is open are skipped. A stream counts as answered once its
first chunk arrived, since after that the client already has part of the answer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from serving.exceptions import (
    GatewayError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from serving.providers.providers import Providers
from serving.providers.result import ProviderResult, ProviderStream
from serving.resilience.breaker import Breakers
from serving.resilience.settings import FailoverSettings

T = TypeVar("T")
UPSTREAM_FAILURES: Final = (UpstreamError, UpstreamTimeoutError, UpstreamRateLimitError)
"""The upstream failed, not the request: worth a retry, a fallback, and a mark against its circuit."""
CIRCUIT_OPEN: Final = "circuit_open"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call that did not answer: the model name tried and why (an error code, or `circuit_open`)."""

    model: str
    reason: str


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """An answer and the model name that gave it."""

    value: T
    model: str


class Failover:
    """Calls `providers` with retries, fallbacks and circuit breakers (`routeiq_settings.failover`)."""

    def __init__(self, providers: Providers, settings: FailoverSettings, breakers: Breakers | None = None) -> None:
        self._providers = providers
        self._settings = settings
        self.breakers = breakers or Breakers(settings.breaker)
        self._rng = random.Random()
        # The config loader has checked every fallback name, so each chain is fixed at start.
        self._chains = {
            name: tuple(dict.fromkeys((name, *settings.fallbacks.get(name, settings.default_fallbacks))))
            for name in providers.names
        }

    def chain(self, name: str, permitted: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """`name`, then its fallbacks (or the default ones), each once; with `permitted` (what the caller may
        use), only the fallbacks among those: a failing deployment never leads a key to a model it may not use."""
        chain = self._chains.get(name, (name,))
        if permitted is None:
            return chain
        return (name, *(model for model in chain[1:] if model in permitted))

    async def complete(
        self, chain: tuple[str, ...], body: Mapping[str, Any], attempts: list[Attempt], caller: str
    ) -> Served[ProviderResult]:
        """A non-streamed chat completion from the first of `chain` (see `chain`) that answers; failed attempts are
        appended to `attempts`. `caller` (a key id or client address) is who the breakers count a failure for."""
        return await self._run(chain, lambda model: self._providers.complete(model, body), attempts, caller)

    async def embed(
        self, chain: tuple[str, ...], body: Mapping[str, Any], attempts: list[Attempt], caller: str
    ) -> Served[ProviderResult]:
        """Embeddings from the first of `chain` that answers; failed attempts are appended to `attempts`."""
        return await self._run(chain, lambda model: self._providers.embed(model, body), attempts, caller)

    async def stream(
        self, chain: tuple[str, ...], body: Mapping[str, Any], attempts: list[Attempt], caller: str
    ) -> Served[ProviderStream]:
        """A stream from the first of `chain` whose first chunk has arrived; failed attempts go to `attempts`."""
        return await self._run(chain, lambda model: self._started(model, body), attempts, caller)

    async def _started(self, model: str, body: Mapping[str, Any]) -> ProviderStream:
        stream = await self._providers.stream(model, body)
        try:
            await stream.start()
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def _run(
        self, chain: tuple[str, ...], call: Callable[[str], Awaitable[T]], attempts: list[Attempt], caller: str
    ) -> Served[T]:
        last: GatewayError | None = None
        for model in chain:
            for retry in range(self._settings.retries + 1):
                if not self.breakers.admit(model):
                    if not retry:
                        attempts.append(Attempt(model, CIRCUIT_OPEN))
                    break
                if retry and not await self._backoff(retry, last):
                    self.breakers.abandoned(model)
                    break
                try:
                    value = await call(model)
                except UPSTREAM_FAILURES as exc:
                    self.breakers.failed(model, caller, exc.code)
                    attempts.append(Attempt(model, exc.code))
                    last = exc
                    continue
                except UpstreamStatusError:
                    self.breakers.succeeded(model)  # the upstream is up: it refused this request
                    raise
                except BaseException:
                    self.breakers.abandoned(model)
                    raise
                self.breakers.succeeded(model)
                return Served(value, model)
        if last is not None:
            raise last
        wait = min(self.breakers.retry_after(model) for model in chain)
        raise UpstreamUnavailableError(chain, max(1, round(wait)))

    async def _backoff(self, retry: int, error: GatewayError | None) -> bool:
        """Wait before retry number `retry`; False (no wait) when a 429 asks for longer than the cap."""
        cap = self._settings.max_backoff_seconds
        asked = _seconds(error.retry_after) if isinstance(error, UpstreamRateLimitError) else None
        if asked is not None and asked > cap:
            return False
        base = self._settings.backoff_seconds * 2 ** (retry - 1)
        wait = min(cap, max(asked or 0.0, base * self._rng.uniform(0.5, 1.5)))
        if wait > 0:
            await asyncio.sleep(wait)
        return True


def _seconds(value: int | str | None) -> float | None:
    """A `Retry-After` in seconds (HTTP dates are not honoured: None)."""
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
