"""Featurizers: fitted state round-trips exactly, specs are checked, prompt identity is stable."""

from __future__ import annotations

import numpy as np
import pytest

from features.fast import FastFeaturizer, FastParams, grams
from features.prompt import clip, normalise_prompt, prompt_from_messages, prompt_id
from features.registry import build, restore
from features.spec import FeatureSpec, FeatureSpecMismatch, check_compatible
from features.text_stats import NAMES, prompt_stats

PROMPTS = [
    "What is the capital of France?",
    "def add(a, b):\n    return a + b\nWrite a test for this function.",
    "Solve for x: 3x + 5 = 20. Give the integer answer.",
    "Which of these is a mammal?\nA) shark\nB) whale\nC) trout\nD) eel\nAnswer:",
    "Translate into French: the cat sat on the mat.",
    "Как дела? 你好",
] * 3


def test_prompt_identity_ignores_outer_whitespace_and_newline_style() -> None:
    assert prompt_id("  Hello\r\nworld \n") == prompt_id("Hello\nworld")
    assert prompt_id("Hello  world") != prompt_id("Hello world")
    assert normalise_prompt("e\u0301") == "\u00e9"
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    assert prompt_from_messages(messages) == "hi"


def test_prompt_statistics_see_code_math_questions_and_scripts() -> None:
    code, math_, question, choice, script = (prompt_stats(PROMPTS[i]) for i in (1, 2, 0, 3, 5))
    idx = {n: i for i, n in enumerate(NAMES)}
    assert code[idx["code_markers"]] > question[idx["code_markers"]]
    assert math_[idx["math_markers"]] > question[idx["math_markers"]]
    assert question[idx["ends_with_question"]] == 1.0 and question[idx["starts_with_question_word"]] == 1.0
    assert choice[idx["choice_lines"]] > 0
    assert script[idx["has_cyrillic"]] == 1.0 and script[idx["has_cjk"]] == 1.0


def test_long_prompts_are_read_as_head_and_tail() -> None:
    text = "a" * 1000 + "MIDDLE" + "z" * 1000
    clipped = clip(text, 400)
    assert len(clipped) == 401 and clipped.startswith("a" * 100) and clipped.endswith("z" * 300)
    assert "MIDDLE" not in clipped
    assert grams("The cat sat", 2) == ["the", "cat", "sat", "the cat", "cat sat"]


def test_fast_features_round_trip_exactly_and_are_deterministic() -> None:
    first = FastFeaturizer(FastParams(components=4, min_df=1)).fit(PROMPTS)
    again = FastFeaturizer(FastParams(components=4, min_df=1)).fit(PROMPTS)
    matrix = first.transform(PROMPTS)
    assert matrix.dtype == np.float32 and matrix.shape == (len(PROMPTS), 4 + len(NAMES))
    np.testing.assert_array_equal(matrix, again.transform(PROMPTS))
    restored = restore(first.spec, first.get_state())
    np.testing.assert_array_equal(matrix, restored.transform(PROMPTS))
    # Similar prompts are closer than unrelated ones in the projected text space.
    text = matrix[:, :4]
    assert np.linalg.norm(text[0] - text[6]) < np.linalg.norm(text[0] - text[1])


def test_a_router_trained_on_other_features_is_refused() -> None:
    fast = build("fast").spec
    with pytest.raises(FeatureSpecMismatch, match="retrain the router"):
        restore(FeatureSpec(name="fast", version=fast.version + 1, params=fast.params), {})
    with pytest.raises(FeatureSpecMismatch, match="unknown features 'tfidf9'"):
        restore(FeatureSpec(name="tfidf9", version=1), {})
    with pytest.raises(FeatureSpecMismatch, match="use the router's own feature parameters"):
        check_compatible(fast, FeatureSpec(name="fast", version=fast.version, params={**fast.params, "components": 8}))
    check_compatible(fast, build("fast").spec)


def test_unfitted_fast_features_say_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="call fit"):
        FastFeaturizer().transform(["x"])
