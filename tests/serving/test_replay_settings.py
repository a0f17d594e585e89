"""Replay settings, the latency file, the latency arithmetic and the seeded fault draws."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.replay import Latency, LatencyModel, ReplaySettings
from serving.replay.exceptions import RateLimitError, ReplaySetupError, UpstreamError
from serving.replay.faults import draw_faults, fires
from serving.replay.latency import draw_delay

LATENCY_YAML = """
default: {ttft_ms: 300, per_token_ms: 20}
models:
  gpt-4-1106-preview: {ttft_ms: 600, per_token_ms: 35.5}
jitter: 0.1
"""


def test_latency_file_yaml_and_json_give_the_same_model(tmp_path: Path) -> None:
    yaml_path = tmp_path / "latency.yaml"
    yaml_path.write_text(LATENCY_YAML)
    from_yaml = ReplaySettings.latency_from_file(yaml_path)
    json_path = tmp_path / "latency.json"
    json_path.write_text(json.dumps(from_yaml.model_dump()))
    assert ReplaySettings.latency_from_file(json_path) == from_yaml
    assert from_yaml.for_model("gpt-4-1106-preview") == Latency(ttft_ms=600, per_token_ms=35.5)
    assert from_yaml.for_model("claude-v1") == Latency(ttft_ms=300, per_token_ms=20)
    assert from_yaml.jitter == 0.1


@pytest.mark.parametrize(
    ("name", "text"),
    [("typo.yaml", "default: {ttft: 3}"), ("bad.json", "{not json"), ("neg.yml", "jitter: 2")],
)
def test_bad_latency_file_names_the_file_and_the_format(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ReplaySetupError, match="must be a YAML or JSON mapping") as caught:
        ReplaySettings.latency_from_file(path)
    assert str(path) in str(caught.value)


def test_missing_latency_file_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(ReplaySetupError, match=r"absent\.yaml"):
        ReplaySettings.latency_from_file(tmp_path / "absent.yaml")


def test_settings_default_to_no_delay_and_no_faults_and_reject_bad_rates(tmp_path: Path) -> None:
    settings = ReplaySettings(outcomes=tmp_path / "o.parquet")
    assert settings.latency.for_model("any") == Latency(ttft_ms=0.0, per_token_ms=0.0)
    rates = (settings.error_rate, settings.rate_limit_rate, settings.stall_rate, settings.broken_stream_rate)
    assert rates == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValidationError):
        ReplaySettings(outcomes=tmp_path / "o.parquet", error_rate=1.5)
    with pytest.raises(ValidationError):
        ReplaySettings(outcomes=tmp_path / "o.parquet", stall_secs=1.0)  # type: ignore[call-arg]


def test_delay_is_ttft_plus_per_token_times_output_tokens() -> None:
    latency = LatencyModel(default=Latency(ttft_ms=100, per_token_ms=10), models={"m": Latency(ttft_ms=50)})
    delay = draw_delay(latency, "other", 5, random.Random(0))
    assert (delay.first_token, delay.decode, delay.total) == pytest.approx((0.1, 0.05, 0.15))
    assert draw_delay(latency, "m", 5, random.Random(0)).total == pytest.approx(0.05)


def test_jitter_stays_in_bounds_and_repeats_under_a_seed() -> None:
    latency = LatencyModel(default=Latency(ttft_ms=100, per_token_ms=10), jitter=0.2)
    draws = [draw_delay(latency, "m", 10, random.Random(7)).total for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(1)
    totals = [draw_delay(latency, "m", 10, rng).total for _ in range(200)]
    assert min(totals) >= 0.2 * 0.8 and max(totals) <= 0.2 * 1.2
    assert max(totals) - min(totals) > 0.02


def test_zero_rates_draw_nothing_and_rate_one_always_fires(tmp_path: Path) -> None:
    rng = random.Random(3)
    state = rng.getstate()
    assert not fires(rng, 0.0)
    faults = draw_faults(ReplaySettings(outcomes=tmp_path / "o"), rng, stream=True)
    assert (faults.stall_seconds, faults.broken_stream, rng.getstate() == state) == (0.0, False, True)
    assert all(fires(rng, 1.0) for _ in range(50))


def test_faults_are_seeded_and_ordered(tmp_path: Path) -> None:
    with pytest.raises(RateLimitError) as caught:
        draw_faults(ReplaySettings(outcomes=tmp_path / "o", rate_limit_rate=1, error_rate=1), random.Random(), False)
    assert caught.value.headers() == {"Retry-After": "1"}
    with pytest.raises(UpstreamError):
        draw_faults(ReplaySettings(outcomes=tmp_path / "o", error_rate=1), random.Random(), False)
    settings = ReplaySettings(outcomes=tmp_path / "o", stall_rate=0.5, stall_seconds=2.0, broken_stream_rate=0.5)
    runs = [[draw_faults(settings, rng, True) for _ in range(40)] for rng in (random.Random(5), random.Random(5))]
    assert runs[0] == runs[1]
    assert {f.stall_seconds for f in runs[0]} == {0.0, 2.0} and {f.broken_stream for f in runs[0]} == {
        True,
        False,
    }
    assert not any(draw_faults(settings, random.Random(5), False).broken_stream for _ in range(40))
