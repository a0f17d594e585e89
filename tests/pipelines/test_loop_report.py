"""The before/after report of the loop: rows for prompts with recorded outcomes only, the Zero router's hull
over the single models, the router's λ curve scored on recorded outcomes, and a plot that shows them all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pipelines import loop_report
from pipelines.traffic import Prompt
from routers.base import Prediction

MODELS = ["big", "small"]
PROMPTS = [
    Prompt("a", "easy", {"big": (1.0, 0.01), "small": (1.0, 0.001)}),
    Prompt("b", "hard", {"big": (1.0, 0.01), "small": (0.0, 0.001)}),
    Prompt("c", "unrecorded", {"big": (None, None), "small": (None, None)}),
]


def test_prompts_without_a_recorded_outcome_are_left_out_of_every_row() -> None:
    uniform = loop_report.uniform_policy(PROMPTS, MODELS)
    assert uniform.quality == 0.75 and uniform.cost_per_1k == 5.5
    assert loop_report.oracle(PROMPTS).quality == 1.0
    kept, quality, cost = loop_report.complete(PROMPTS, MODELS)
    assert [p.prompt_id for p in kept] == ["a", "b"] and quality.shape == cost.shape == (2, 2)


def test_the_zero_hull_and_a_perfect_routers_curve() -> None:
    zero = loop_report.zero_router_hull(PROMPTS, MODELS)
    assert zero.costs_per_1k == (1.0, 10.0) and zero.qualities == (0.5, 1.0)
    _, quality, cost = loop_report.complete(PROMPTS, MODELS)
    curve = loop_report.router_curve("perfect", quality, cost, Prediction(quality, cost))
    # Somewhere on its sweep a router that knows the outcomes sends only the hard prompt to the big model.
    assert any(c == 5.5 and q == 1.0 for c, q in zip(curve.costs_per_1k, curve.qualities, strict=True))
    assert list(curve.costs_per_1k) == sorted(curve.costs_per_1k)


def test_the_plot_shows_every_single_model_and_the_frontiers(tmp_path: Path) -> None:
    singles = [loop_report.fixed_model(PROMPTS[:2], m) for m in MODELS]
    _, quality, cost = loop_report.complete(PROMPTS, MODELS)
    frontiers = [
        loop_report.zero_router_hull(PROMPTS, MODELS),
        loop_report.router_curve("perfect", quality, cost, Prediction(quality, cost)),
    ]
    path = tmp_path / "before-after.png"
    loop_report.plot([loop_report.uniform_policy(PROMPTS, MODELS)], path, "t", singles, frontiers)
    with Image.open(path) as image:
        assert image.size == (1100, 550)
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 10
