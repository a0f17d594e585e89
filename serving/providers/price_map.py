"""LiteLLM's bundled price map (`model_prices_and_context_window_backup.json`), read without importing
LiteLLM: the file is all the gateway needs, and importing LiteLLM costs ~140 MB and seconds of start-up.

Not `litellm.model_cost`: every `litellm.Router` registers its deployments there, unknown models at price 0,
which would make every unmapped model look free.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import orjson

PRICE_FILE: Final = "model_prices_and_context_window_backup.json"


class PriceMapUnavailable(RuntimeError):
    """LiteLLM (which ships the price file) is not installed."""


def price_file() -> Path:
    """The price file inside the installed LiteLLM package (found without running the package's code)."""
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / PRICE_FILE
        if path.is_file():
            return path
    raise PriceMapUnavailable(f"LiteLLM's {PRICE_FILE} was not found; reinstall litellm (requirements.txt)")


class BundledPriceMap:
    """USD per call from LiteLLM's bundled per-token prices; keeps only the entries of `models` when given
    (the configured deployments' `provider/model` and bare names), so its memory is a few entries."""

    def __init__(self, models: Iterable[tuple[str, str]] | None = None) -> None:
        entries: dict[str, Any] = orjson.loads(price_file().read_bytes())
        if models is not None:
            wanted = {name for upstream, provider in models for name in (f"{provider}/{upstream}", upstream)}
            entries = {name: entry for name, entry in entries.items() if name in wanted}
        self._entries: Mapping[str, Mapping[str, Any]] = MappingProxyType(entries)

    def __call__(self, upstream_model: str, provider: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD for these token counts, or None when the map has no per-token price for the model at `provider`."""
        entry = self._entry(upstream_model, provider)
        if entry is None:
            return None
        input_price, output_price = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if not isinstance(input_price, int | float):
            return None
        output_price = output_price if isinstance(output_price, int | float) else 0.0
        return float(input_tokens * input_price + output_tokens * output_price)

    def max_output_tokens(self, upstream_model: str, provider: str) -> int | None:
        """The most tokens the model writes in one answer, when the map knows it."""
        entry = self._entry(upstream_model, provider)
        found = entry.get("max_output_tokens") if entry is not None else None
        return found if isinstance(found, int) and found > 0 else None

    def _entry(self, upstream_model: str, provider: str) -> Mapping[str, Any] | None:
        entry = self._entries.get(f"{provider}/{upstream_model}")
        if entry is None:
            bare = self._entries.get(upstream_model)
            # A bare name is some provider's model: a self-hosted namesake is not priced like it.
            entry = bare if bare is not None and bare.get("litellm_provider") == provider else None
        return entry
