"""Two-model metrics (RouteLLM): PGR as a function of the share of strong calls, APGR and CPT(x%).

For exactly one strong and one weak candidate; pure numpy on per-prompt arrays, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routers.decision import FloatArray

APGR_SHARES = tuple(k / 10 for k in range(1, 11))
"""RouteLLM's 10-point approximation of the area under PGR(share)."""
CPT_LEVELS = (0.5, 0.8)
QUALITY_TIE = 1e-12
"""Mean qualities closer than this count as equal: PGR is then undefined rather than rounding noise."""


@dataclass(frozen=True)
class PgrCurve:
    """PGR at the shares where the router's ordering changes group; linear in between.

    Prompts with the same switch λ form a group that a router cannot order, so within it the expected
    PGR of a random pick is linear in the share: only group boundaries are kept.
    """

    shares: FloatArray
    pgr: FloatArray

    def at(self, share: float) -> float:
        """PGR when a `share` of the prompts (those the router prefers most for strong) go to strong."""
        return float(np.interp(share, self.shares, self.pgr))

    def apgr(self) -> float:
        """Mean PGR over the shares 10%, 20%, …, 100%."""
        return float(np.mean([self.at(share) for share in APGR_SHARES]))

    def cpt(self, level: float) -> float | None:
        """Smallest share of strong calls at which PGR reaches `level`; None if it never does."""
        reached = np.flatnonzero(self.pgr >= level)
        if reached.size == 0:
            return None
        j = int(reached[0])
        if j == 0:
            return float(self.shares[0])
        fraction = (level - self.pgr[j - 1]) / (self.pgr[j] - self.pgr[j - 1])
        return float(self.shares[j - 1] + fraction * (self.shares[j] - self.shares[j - 1]))


def switch_cost_weights(
    pred_quality_strong: FloatArray,
    pred_quality_weak: FloatArray,
    pred_cost_strong: FloatArray,
    pred_cost_weak: FloatArray,
) -> FloatArray:
    """Per prompt, the λ below which the router sends it to strong: (q̂s − q̂w) / (ĉs − ĉw) if ĉs > ĉw.

    +inf when strong is not costlier and not predicted worse (always strong), −inf otherwise.
    """
    dq = np.asarray(pred_quality_strong, dtype=np.float64) - np.asarray(pred_quality_weak, dtype=np.float64)
    dc = np.asarray(pred_cost_strong, dtype=np.float64) - np.asarray(pred_cost_weak, dtype=np.float64)
    costlier = dc > 0.0
    ratio = np.divide(dq, dc, out=np.zeros_like(dq), where=costlier)
    return np.where(costlier, ratio, np.where(dq >= 0.0, np.inf, -np.inf))


def pgr_curve(quality_strong: FloatArray, quality_weak: FloatArray, switch: FloatArray) -> PgrCurve | None:
    """PGR(share) when the prompts with the highest switch λ go to strong first.

    PGR(k/n) = (Q(k) − q_weak) / (q_strong − q_weak) = (gain of the top k prompts) / (total gain).
    None when strong and weak have the same mean true quality (PGR is undefined).
    """
    gain = np.asarray(quality_strong, dtype=np.float64) - np.asarray(quality_weak, dtype=np.float64)
    total = float(gain.sum())
    if abs(total) <= QUALITY_TIE * gain.size:
        return None
    order = np.argsort(-np.asarray(switch, dtype=np.float64), kind="stable")
    ranked = np.asarray(switch, dtype=np.float64)[order]
    cumulative = np.concatenate(([0.0], np.cumsum(gain[order])))
    boundary = np.concatenate(([True], ranked[1:] != ranked[:-1], [True]))
    k = np.flatnonzero(boundary)
    return PgrCurve(shares=k / gain.size, pgr=cumulative[k] / total)


def pgr_of(quality: float, quality_strong: float, quality_weak: float) -> float | None:
    """PGR of one operating point's mean true quality; None when strong and weak tie."""
    if abs(quality_strong - quality_weak) <= QUALITY_TIE:
        return None
    return (quality - quality_weak) / (quality_strong - quality_weak)


def random_pgr_curve() -> PgrCurve:
    """Random routing: a random share s of the prompts goes to strong, so its expected PGR(s) is s.

    Hence APGR = mean(0.1, …, 1.0) = 0.55 with the 10-point approximation, and CPT(x) = x.
    """
    return PgrCurve(shares=np.array([0.0, 1.0]), pgr=np.array([0.0, 1.0]))
