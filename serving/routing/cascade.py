"""The cascade serving mode's decisions (`routeiq_settings.routing.cascade: verifier`): which pair a cascade
version asks, and whether its first answer is kept. The calls themselves are `serving.cascade_call`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from routers.cascade import CascadeRouter
from serving.routing.loader import ActiveRouter

OFF: Final = "off"
KEPT: Final = "kept"
ESCALATED: Final = "escalated"
ESCALATION_FAILED: Final = "escalation_failed"
SKIPPED_STREAM: Final = "skipped_stream"
FIRST: Final = "first"
"""Outcomes of a cascade request (`routeiq.cascade.outcome`) and the steps of its calls (`routeiq.cascade.step`)."""
SCORE_HEADER: Final = "x-routeiq-cascade-score"
THRESHOLD_HEADER: Final = "x-routeiq-cascade-threshold"
FIRST_MODEL_HEADER: Final = "x-routeiq-cascade-first-model"
FIRST_ID_HEADER: Final = "x-routeiq-cascade-first-id"
"""Response headers of a cascade request: the check's score and bar; an escalated first answer's model and id
(post feedback on that id to label the first model's outcome too). `x-routeiq-cascade` holds the outcome."""


@dataclass(frozen=True)
class CascadePlan:
    """The models a cascade request may ask: `first` (the version's choice from the prompt alone), then `strong`
    when the verifier doubts the first answer."""

    first: str
    strong: str
    router: CascadeRouter


@dataclass(frozen=True)
class CascadeCheck:
    """The verifier's score for the first answer and the bar it had to clear."""

    score: float
    threshold: float

    @property
    def escalate(self) -> bool:
        return self.score < self.threshold


def plan_for(active: ActiveRouter, candidates: tuple[str, ...], mode: str, chosen: str) -> CascadePlan | None:
    """The cascade this request may run: for a cascade version with the mode on, whose prompt-only choice among the
    caller's `candidates` (`chosen`) is not its strong model, which the caller may use (else None: the request is
    served by the prompt-only choice alone)."""
    router = active.model.router
    if mode == OFF or not isinstance(router, CascadeRouter):
        return None
    strong = router.strong_model()
    if chosen == strong or strong not in candidates:
        return None
    return CascadePlan(chosen, strong, router)


def check(plan: CascadePlan, prompt: str, answer: str, model: str, cost_weight: float) -> CascadeCheck:
    """Score `model`'s `answer` with the version's verifier (blocking: run it off the event loop). An answer from a
    model the version does not know (a failover fallback's) is scored as the planned first model's."""
    router = plan.router
    known = model if model in router.models_ else plan.first
    score = float(router.verify([prompt], [answer], known)[0])
    return CascadeCheck(score=score, threshold=float(router.thresholds([prompt], cost_weight)[0]))


def answer_text(body: bytes) -> str:
    """The first choice's message content of a `chat.completion` body ("" when it has none: a tool call, a
    refusal, or a body that is not one)."""
    try:
        parsed = orjson.loads(body)
        content = parsed["choices"][0]["message"].get("content")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""
