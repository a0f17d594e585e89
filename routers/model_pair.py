"""The (cheap, strong) model pair of the two-model families: the strongest by mean quality and the cheapest
model close enough to it. Pure selection over per-model means; it fits nothing and decides no prompt.
"""

from __future__ import annotations

import numpy as np

from routers.base import RouterError
from routers.dataset import FloatMatrix


def choose_pair(
    models: tuple[str, ...], quality: FloatMatrix, cost: FloatMatrix, gap: float, *, cheap: str = "", strong: str = ""
) -> tuple[int, int]:
    """(cheap, strong) column indices. Empty names mean: strong = best mean quality (first on ties),
    cheap = the lowest mean cost among models whose mean quality is within `gap` of the strong one's."""
    for name in (cheap, strong):
        if name and name not in models:
            raise RouterError(f"model {name!r} is not among the training models {list(models)}; pick one of them")
    best = models.index(strong) if strong else int(np.argmax(quality))
    if cheap:
        return models.index(cheap), best
    close = np.flatnonzero(quality >= quality[best] - gap)
    return int(close[np.argmin(cost[close])]), best
