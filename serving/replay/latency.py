"""The modelled latency of one answer: time to first token, then decode time, with seeded jitter.

Pure arithmetic on the settings and an RNG passed in; it never sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from serving.replay.settings import LatencyModel

MS_PER_SECOND = 1000.0


@dataclass(frozen=True, slots=True)
class Delay:
    """Seconds before the first token, and seconds spent producing the rest."""

    first_token: float
    decode: float

    @property
    def total(self) -> float:
        """Seconds before a non-streamed answer is sent."""
        return self.first_token + self.decode


def draw_delay(latency: LatencyModel, model: str, output_tokens: int, rng: random.Random) -> Delay:
    """ttft_ms + per_token_ms × output_tokens of `model`, both scaled by one factor in [1 ± jitter]."""
    spec = latency.for_model(model)
    factor = 1.0 + latency.jitter * rng.uniform(-1.0, 1.0) if latency.jitter else 1.0
    return Delay(
        first_token=factor * spec.ttft_ms / MS_PER_SECOND,
        decode=factor * spec.per_token_ms * output_tokens / MS_PER_SECOND,
    )
