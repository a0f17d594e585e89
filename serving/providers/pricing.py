"""The cost of one upstream call and where the number came from: provider, config, price map, or nothing.

One pure function; the price map is passed in (the LiteLLM adapter's), so this module never imports litellm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from serving.providers.deployment import Deployment

PROVIDER: Final = "provider"
"""The upstream reported the cost itself (`usage.cost`, as OpenRouter and the replay provider do)."""
CONFIG: Final = "config"
"""Token counts × the deployment's configured `input_cost_per_token` / `output_cost_per_token`."""
PRICE_MAP: Final = "price_map"
"""Token counts × LiteLLM's local price map for the upstream model."""
ZERO_PRICE: Final = "zero_price"
"""A configured or mapped price of exactly 0: reported apart, since it is usually a config mistake."""
UNPRICED: Final = "unpriced"
"""No cost from the provider and no price anywhere: counted as 0 USD."""
COST_SOURCES: Final = (PROVIDER, CONFIG, PRICE_MAP, ZERO_PRICE, UNPRICED)

PriceMap = Callable[[str, str, int, int], "float | None"]
"""(upstream_model, provider, input_tokens, output_tokens) → USD, or None when the model is not in the map."""


@dataclass(frozen=True, slots=True)
class Cost:
    """USD for one call, and its source (one of `COST_SOURCES`)."""

    usd: float
    source: str


def request_cost(
    deployment: Deployment,
    input_tokens: int,
    output_tokens: int,
    provider_cost: float | None = None,
    price_map: PriceMap | None = None,
) -> Cost:
    """The provider's cost when it gave one, else configured prices, else the price map, else 0 "unpriced"."""
    if provider_cost is not None:
        return Cost(float(provider_cost), PROVIDER)
    prices = deployment.prices
    if prices is not None:
        return Cost(0.0, ZERO_PRICE) if prices.zero else Cost(prices.cost(input_tokens, output_tokens), CONFIG)
    mapped = (
        price_map(deployment.upstream_model, deployment.provider, input_tokens, output_tokens) if price_map else None
    )
    if mapped is None:
        return Cost(0.0, UNPRICED)
    # The map gives a cost, not a price: 0 for a call with tokens means the mapped price is 0.
    if mapped == 0.0 and input_tokens + output_tokens > 0:
        return Cost(0.0, ZERO_PRICE)
    return Cost(float(mapped), PRICE_MAP)
