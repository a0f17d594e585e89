"""Non-decreasing convex hull of (cost, quality) operating points, its look-ups, and AIQ (RouterBench).

Pure geometry on already-aggregated points: it knows nothing about prompts, models or routers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from routers.decision import FloatArray

COST_TOLERANCE = 1e-9
"""Relative slack when a cost is compared with the hull's cheapest cost (means of the same numbers)."""


@dataclass(frozen=True)
class Hull:
    """Vertices of a non-decreasing concave frontier; costs and qualities both strictly increase.

    Mixing two operating points at random reaches every point on the segment between them, so the hull
    is what a router can achieve. Past the last vertex the frontier is flat; below the first it is undefined.
    """

    costs: FloatArray
    qualities: FloatArray

    @property
    def min_cost(self) -> float:
        """Cost of the cheapest operating point."""
        return float(self.costs[0])

    @property
    def max_quality(self) -> float:
        """Quality of the best operating point (the last vertex)."""
        return float(self.qualities[-1])

    def quality_at(self, cost: float) -> float | None:
        """Hull quality at `cost`; None below the cheapest point, where the router cannot operate."""
        if cost < self.min_cost and not math.isclose(cost, self.min_cost, rel_tol=COST_TOLERANCE):
            return None
        return float(np.interp(cost, self.costs, self.qualities))

    def cost_to_reach(self, quality: float) -> float | None:
        """Smallest cost at which the hull reaches `quality`; None if it never does."""
        if quality > self.max_quality:
            return None
        return float(np.interp(quality, self.qualities, self.costs))

    def points(self) -> list[tuple[float, float]]:
        """The vertices as (cost, quality) pairs."""
        return [(float(c), float(q)) for c, q in zip(self.costs, self.qualities, strict=True)]


def upper_hull(costs: npt.ArrayLike, qualities: npt.ArrayLike) -> Hull:
    """Non-decreasing convex hull: upper concave envelope from the cheapest point to the best one.

    The cheapest point (ties: the better one) starts it, the best point (ties: the cheaper one) ends it;
    points costlier than the best are dominated, points under a chord are mixtures' losers.
    """
    c = np.asarray(costs, dtype=np.float64).ravel()
    q = np.asarray(qualities, dtype=np.float64).ravel()
    if c.size == 0 or c.shape != q.shape:
        raise ValueError(f"need as many costs as qualities and at least one point, got {c.size} and {q.size}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(q))):
        raise ValueError("costs and qualities must be finite")
    order = np.lexsort((-q, c))
    c, q = c[order], q[order]
    first_of_cost = np.concatenate(([True], c[1:] != c[:-1]))
    c, q = c[first_of_cost], q[first_of_cost]
    best = int(np.argmax(q))
    c, q = c[: best + 1], q[: best + 1]
    kept: list[int] = []
    for i in range(c.size):
        while len(kept) >= 2 and _on_or_below(c, q, kept[-2], kept[-1], i):
            kept.pop()
        kept.append(i)
    return Hull(costs=c[kept], qualities=q[kept])


def _on_or_below(c: FloatArray, q: FloatArray, a: int, b: int, p: int) -> bool:
    """Whether point b lies on or under the segment from a to p (so it is not a hull vertex)."""
    cross = (c[b] - c[a]) * (q[p] - q[a]) - (q[b] - q[a]) * (c[p] - c[a])
    return bool(cross >= 0.0)


def aiq(hull: Hull, max_cost: float) -> float:
    """Average quality of the hull over costs 0..max_cost: area under it, flat past its end, / max_cost.

    Below the hull's cheapest point the router cannot operate, so that stretch adds no area.
    With max_cost = 0 (everything free) the limit of the average is the quality at cost 0.
    """
    if not math.isfinite(max_cost) or max_cost < 0.0:
        raise ValueError(f"max_cost must be finite and >= 0, got {max_cost}")
    if hull.min_cost < 0.0:
        raise ValueError(f"costs must be >= 0 to integrate from 0, got {hull.min_cost}")
    if max_cost < hull.min_cost:
        return 0.0
    if max_cost == 0.0:
        return hull.max_quality
    inside = hull.costs < max_cost
    xs = np.append(hull.costs[inside], max_cost)
    ys = np.append(hull.qualities[inside], np.interp(max_cost, hull.costs, hull.qualities))
    return float(np.trapezoid(ys, xs) / max_cost)
