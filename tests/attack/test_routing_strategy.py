"""A misspelt learned strategy stops the start (it used to warn and route at random while reporting ready)."""

from __future__ import annotations

import pytest

from routers.registry import EVALUATION_ONLY, FAMILIES
from serving.config import parse_config
from serving.exceptions import GatewayConfigError

ENTRY = {"model_name": "m", "litellm_params": {"model": "openai/m"}}


def config_with(strategy: str) -> dict[str, object]:
    return {"model_list": [ENTRY], "router_settings": {"routing_strategy": strategy}}


@pytest.mark.parametrize("strategy", ["llmrouter-knnn", "llmrouter-", "llmrouter-oracle", "llmrouter-KNN"])
def test_an_unknown_family_stops_the_start_listing_the_valid_ones(strategy: str) -> None:
    with pytest.raises(GatewayConfigError) as refused:
        parse_config(config_with(strategy))
    message = str(refused.value)
    assert repr(strategy) in message and "llmrouter-knn," in message and "simple-shuffle" in message
    assert "\n" not in message


def test_every_servable_family_is_accepted() -> None:
    for family in sorted(set(FAMILIES) - EVALUATION_ONLY):
        config = parse_config(config_with(f"llmrouter-{family}"))
        assert config.learned and config.settings.routing.family == family
