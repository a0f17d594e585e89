"""Injected faults: seeded draws that turn a request into a 429, a 500, a stall or a broken stream.

Decisions only, from the settings and the RNG on app.state; it never sleeps and never writes a response.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from serving.replay.exceptions import RateLimitError, UpstreamError
from serving.replay.settings import ReplaySettings


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults drawn for one request that still gets an answer."""

    stall_seconds: float
    broken_stream: bool


def fires(rng: random.Random, rate: float) -> bool:
    """One Bernoulli draw; no draw at all when the rate is 0, so benchmark runs consume no randomness."""
    return rate > 0.0 and rng.random() < rate


def draw_faults(settings: ReplaySettings, rng: random.Random, stream: bool) -> Faults:
    """Raise `RateLimitError` or `UpstreamError` when drawn; otherwise return the stall and stream faults."""
    if fires(rng, settings.rate_limit_rate):
        raise RateLimitError(settings.retry_after_seconds)
    if fires(rng, settings.error_rate):
        raise UpstreamError()
    stall = settings.stall_seconds if fires(rng, settings.stall_rate) else 0.0
    return Faults(stall_seconds=stall, broken_stream=stream and fires(rng, settings.broken_stream_rate))
