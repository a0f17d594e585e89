"""Span attributes of a decision: prompt text only when capture is on, the arm and fallback reason when set."""

from __future__ import annotations

from features.prompt import prompt_id
from serving.request_span import decision_attributes
from serving.routing.policy import Decision
from serving.telemetry import attributes as a

PROMPT = "Which planet is largest? my key is sk-not-a-real-key"


def test_prompt_text_is_recorded_only_when_capture_is_enabled() -> None:
    decision = Decision(model="m", by="router", propensity=1.0, cost_weight=2.0)
    hidden = decision_attributes(decision, PROMPT, capture_prompt=False)
    assert a.PROMPT_TEXT not in hidden and PROMPT not in map(str, hidden.values())
    assert hidden[a.PROMPT_HASH] == prompt_id(PROMPT)
    assert decision_attributes(decision, PROMPT, capture_prompt=True)[a.PROMPT_TEXT] == PROMPT


def test_arm_fallback_reason_and_predictions_are_recorded_when_present() -> None:
    decision = Decision(
        model="b",
        by="fallback",
        propensity=0.5,
        cost_weight=0.0,
        arm="challenger",
        candidates=("a", "b"),
        quality=(0.9, 0.7),
        cost=(0.01, 0.001),
        fallback_reason="timeout",
    )
    found = decision_attributes(decision, PROMPT, capture_prompt=False)
    assert found[a.ROUTER_ARM] == "challenger" and found[a.FALLBACK_REASON] == "timeout"
    assert found[a.CANDIDATES] == ["a", "b"] and found[a.PREDICTED_QUALITY] == [0.9, 0.7]
    assert found[a.PREDICTED_COST] == [0.01, 0.001] and found[a.PROPENSITY] == 0.5
    assert a.ROUTER_VERSION not in found  # no router decided
