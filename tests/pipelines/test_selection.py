"""Choosing the family to promote on logged traffic: on validation, the best advantage over the logging policy at
the low end of its interval (a family whose estimate rests on fewer effective samples must earn more); at the
gate, on the test split the choice never saw, the whole interval above 0. When nothing qualifies the verdict
says so with the closest family's figures, and the gate's refusal gives the interval it rests on."""

from __future__ import annotations

import pytest

from pipelines.evaluate import choose_best, verdict
from registry.promotion import GateRefused, gate
from registry.versions import VersionInfo


def logged(advantage: float, low: float, high: float, utility: float, effective: float = 300.0) -> dict[str, float]:
    return {
        "test_dr_advantage": advantage,
        "test_dr_advantage_low": low,
        "test_dr_advantage_high": high,
        "test_dr_utility": utility,
        "test_logging_utility": utility - advantage,
        "test_ope_effective_samples": effective,
        "test_aiq": 0.5,
    }


def test_the_family_with_the_best_lower_bound_is_chosen() -> None:
    families = {
        "noisy": logged(0.09, -0.01, 0.19, utility=0.79, effective=40.0),  # the highest point, on little evidence
        "knn": logged(0.05, 0.02, 0.08, utility=0.75),
        "mlp": logged(0.04, 0.01, 0.07, utility=0.74),
        "behind": logged(-0.01, -0.03, 0.01, utility=0.70),
    }
    assert choose_best(families) == "knn"
    line = verdict(families, "knn")
    assert line.startswith("chose knn") and "[+0.0200, +0.0800]" in line and "300 effective samples" in line
    assert choose_best({"noisy": families["noisy"], "behind": families["behind"]}) == "noisy"


def test_when_none_is_ahead_nothing_is_chosen_and_the_verdict_says_why() -> None:
    families = {
        "cheapest": logged(-0.10, -0.15, -0.05, utility=0.6),
        "knn": logged(-0.01, -0.04, 0.02, utility=0.73, effective=55.0),
    }
    assert choose_best(families) is None
    line = verdict(families, None)
    assert "no family beats the logging policy on validation" in line
    assert "knn" in line and "-0.0100" in line and "55 effective samples" in line and "\n" not in line


def test_full_information_data_is_chosen_on_aiq() -> None:
    assert choose_best({"a": {"test_aiq": 0.7}, "b": {"test_aiq": 0.8}}) == "b"


def version(number: int, **metrics: float) -> VersionInfo:
    return VersionInfo(number, "knn", "None", (), dict(metrics), "", "", {})


def test_the_gate_refusal_gives_the_interval_and_the_effective_samples() -> None:
    candidate = version(
        4,
        test_aiq=0.8,
        test_dr_utility=0.70,
        test_logging_utility=0.71,
        test_dr_advantage_low=-0.05,
        test_dr_advantage_high=0.03,
        test_ope_effective_samples=120.0,
    )
    with pytest.raises(GateRefused) as refused:
        gate(candidate, None)
    message = str(refused.value)
    assert "does not beat the logging policy" in message and "[-0.0500, +0.0300] on 120 effective samples" in message
    gate(version(5, test_aiq=0.8, test_dr_utility=0.72, test_logging_utility=0.71), None)
    ahead_within_noise = version(
        6, test_aiq=0.8, test_dr_utility=0.75, test_logging_utility=0.71, test_dr_advantage_low=-0.001
    )
    with pytest.raises(GateRefused, match="is not surely above the logging policy"):
        gate(ahead_within_noise, None)
    gate(version(7, test_aiq=0.8, test_dr_utility=0.75, test_logging_utility=0.71, test_dr_advantage_low=0.01), None)
