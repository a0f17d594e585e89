"""The gateway config: LiteLLM's format loads unchanged, env references resolve, mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.config import load_config, parse_config, resolve_env
from serving.exceptions import GatewayConfigError

ISSUE_CONFIG = """\
model_list:
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-3-sonnet-20240229
      api_key: os.environ/ANTHROPIC_API_KEY
  - model_name: claude-haiku
    litellm_params:
      model: anthropic/claude-3-haiku-20240307
      api_key: os.environ/ANTHROPIC_API_KEY
router_settings:
  routing_strategy: llmrouter-knn
  routing_strategy_args:
    model_path: /app/models/knn_router
    llm_data_path: /app/config/llm_candidates.json
    hot_reload: true
    reload_interval: 300
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""


def test_a_litellm_router_config_loads_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-master")
    path = tmp_path / "config.yaml"
    path.write_text(ISSUE_CONFIG)
    config = load_config(path)
    assert config.model_names == ("claude-sonnet", "claude-haiku")
    assert [d.api_key for d in config.deployments] == ["sk-ant-test", "sk-ant-test"]
    assert [d.provider for d in config.deployments] == ["anthropic", "anthropic"]
    assert config.learned and config.master_key == "sk-master"
    routing = config.settings.routing
    assert routing.family == "knn"
    assert routing.hot_reload and routing.poll_interval_seconds == 300
    assert routing.reference == "models:/routeiq-router/Production"
    superseded = [note for note in config.notes if "superseded by the model registry" in note]
    assert len(superseded) == 2
    assert "/app/models/knn_router" in superseded[0]


def test_litellm_strategies_pass_through_and_unknown_ones_are_refused() -> None:
    entry = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": "http://127.0.0.1:9/v1"}}
    loopback = {"security": {"upstream_allowlist": ["127.0.0.0/8"]}}
    config = parse_config(
        {"model_list": [entry], "router_settings": {"routing_strategy": "least-busy"}, "routeiq_settings": loopback}
    )
    assert config.routing_strategy == "least-busy" and not config.learned
    with pytest.raises(GatewayConfigError, match="llmrouter-<family>"):
        parse_config({"model_list": [entry], "router_settings": {"routing_strategy": "fastest-please"}})


def test_llmrouter_any_accepts_every_family() -> None:
    entry = {"model_name": "m", "litellm_params": {"model": "openai/m"}}
    config = parse_config({"model_list": [entry], "router_settings": {"routing_strategy": "llmrouter-any"}})
    assert config.learned and config.settings.routing.family is None


def test_a_missing_environment_variable_names_the_key_and_the_variable() -> None:
    with pytest.raises(GatewayConfigError, match=r"model_list\[0\]\.litellm_params\.api_key.*NOPE_KEY"):
        resolve_env({"model_list": [{"litellm_params": {"api_key": "os.environ/NOPE_KEY"}}]}, "", {})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "model_list"),
        ({"model_list": [{"model_name": "m"}]}, "litellm_params"),
        (
            {"model_list": [{"model_name": "auto", "litellm_params": {"model": "openai/x"}}]},
            "virtual_model 'auto' is also a model_name",
        ),
        (
            {
                "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x"}}],
                "routeiq_settings": {"routing": {"fallback_model": "other"}},
            },
            "fallback_model 'other' is not a model_name",
        ),
        (
            {
                "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x"}}],
                "routeiq_settings": {"routing": {"epsilon": 2}},
            },
            r"routeiq_settings\.routing\.epsilon",
        ),
    ],
)
def test_config_mistakes_say_what_to_change(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(GatewayConfigError, match=message):
        parse_config(raw)


def test_an_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match="cannot read gateway config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: [")
    with pytest.raises(GatewayConfigError, match="not valid YAML"):
        load_config(bad)
