"""One upstream deployment, read from a LiteLLM `model_list` entry: its name, provider, endpoint and prices.

Parsing and derived values only; it never resolves `os.environ/` references (the config loader does) or calls out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from serving.exceptions import GatewayConfigError

DEFAULT_PROVIDER: Final = "openai"
OPENAI_COMPATIBLE: Final = frozenset({"openai", "custom_openai", "hosted_vllm", "openai_like"})
"""LiteLLM providers whose `api_base` speaks the OpenAI HTTP API as is, so the direct path can call it."""
CONNECT_GUARDED: Final = OPENAI_COMPATIBLE | frozenset({"anthropic", "groq"})
"""Providers whose calls the SSRF guard checks at connect time, on the direct path or through LiteLLM (tested in
tests/serving/test_ssrf.py); any other provider's `api_base` must be allow-listed by the operator."""
DIRECT_PARAMS: Final = frozenset(
    {"model", "api_base", "api_key", "timeout", "stream_timeout", "input_cost_per_token", "output_cost_per_token"}
    | {"rpm", "tpm", "weight", "order", "tags", "max_parallel_requests"}
)
"""`litellm_params` the direct path honours (or that only matter to LiteLLM's load balancing); any other key,
such as `extra_headers`, `organization` or a default `temperature`, sends the deployment through LiteLLM."""
PRICE_KEYS: Final = ("input_cost_per_token", "output_cost_per_token")


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per input token and per output token, as configured for a deployment."""

    input_per_token: float
    output_per_token: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of a call with these token counts."""
        return input_tokens * self.input_per_token + output_tokens * self.output_per_token

    @property
    def zero(self) -> bool:
        """Both prices are exactly 0: calls are free, or (more often) a price was left at 0 by mistake."""
        return self.input_per_token == 0.0 and self.output_per_token == 0.0


@dataclass(frozen=True)
class Deployment:
    """A `model_list` entry: `model_name` is what clients ask for, `litellm_params.model` what is called.

    Write the provider prefix (`openai/`, `hosted_vllm/`, `anthropic/`, ...) explicitly: a model without one
    is taken as `openai`, as the direct path has no way to infer a provider from a model name.
    """

    model_name: str
    litellm_params: Mapping[str, Any] = field(hash=False)
    model_info: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], where: str = "model_list entry") -> Deployment:
        """Check one entry (env references already resolved) and build its deployment.

        `where` names the entry in error messages, e.g. "model_list[2]".
        """
        if not isinstance(entry, Mapping):
            raise GatewayConfigError(f"{where} must be a mapping with `model_name` and `litellm_params`")
        name = entry.get("model_name")
        if not isinstance(name, str) or not name.strip():
            raise GatewayConfigError(f"{where} needs `model_name`: the non-empty name clients send as `model`")
        params = entry.get("litellm_params")
        if not isinstance(params, Mapping) or not isinstance(params.get("model"), str) or not params["model"]:
            raise GatewayConfigError(
                f"{where} ({name!r}) needs `litellm_params.model`: the provider-prefixed upstream model, "
                "e.g. `openai/gpt-4o-mini` or `hosted_vllm/meta-llama/Llama-3.1-8B-Instruct`"
            )
        info = entry.get("model_info") or {}
        if not isinstance(info, Mapping):
            raise GatewayConfigError(f"{where} ({name!r}): `model_info` must be a mapping")
        for key in ("api_base", "api_key"):
            if params.get(key) is not None and not isinstance(params[key], str):
                raise GatewayConfigError(f"{where} ({name!r}): `litellm_params.{key}` must be a string")
        deployment = cls(model_name=name, litellm_params=dict(params), model_info=dict(info))
        _ = deployment.prices  # checked now, not on the first request
        return deployment

    @property
    def model(self) -> str:
        """`litellm_params.model` as configured, prefix included."""
        model: str = self.litellm_params["model"]
        return model

    @cached_property
    def provider(self) -> str:
        """The LiteLLM provider prefix of `model` ("openai" when there is none)."""
        prefix, _, rest = self.model.partition("/")
        return prefix if rest else DEFAULT_PROVIDER

    @cached_property
    def upstream_model(self) -> str:
        """The model name the upstream expects: `model` without its provider prefix."""
        prefix, _, rest = self.model.partition("/")
        return rest or prefix

    @cached_property
    def api_base(self) -> str | None:
        """The upstream base URL without a trailing slash, e.g. `http://127.0.0.1:8100/v1`."""
        base = self.litellm_params.get("api_base")
        return base.rstrip("/") if base else None

    @property
    def api_key(self) -> str | None:
        """The upstream key, or None when the upstream needs none."""
        key: str | None = self.litellm_params.get("api_key") or None
        return key

    @cached_property
    def direct(self) -> bool:
        """Whether the direct fast path can call this deployment: OpenAI-compatible, an `api_base`, and no
        `litellm_params` that only LiteLLM would apply."""
        return (
            self.provider in OPENAI_COMPATIBLE
            and self.api_base is not None
            and set(self.litellm_params) <= DIRECT_PARAMS
        )

    @cached_property
    def prices(self) -> Prices | None:
        """Configured per-token prices, from `litellm_params`, else `model_info`; None when neither sets one.

        A price given on its own leaves the other at 0, as LiteLLM does.
        """
        found = {key: _price(self, key) for key in PRICE_KEYS}
        if all(value is None for value in found.values()):
            return None
        return Prices(found["input_cost_per_token"] or 0.0, found["output_cost_per_token"] or 0.0)

    def timeout(self, stream: bool) -> float | None:
        """The deployment's own timeout in seconds (`stream_timeout` for streams, else `timeout`), if any."""
        value = (self.litellm_params.get("stream_timeout") if stream else None) or self.litellm_params.get("timeout")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def label(self) -> str:
        """How error messages name this deployment: its name and upstream model, never its URL or key."""
        return f"deployment {self.model_name!r} ({self.model})"


def _price(deployment: Deployment, key: str) -> float | None:
    for source, mapping in (("litellm_params", deployment.litellm_params), ("model_info", deployment.model_info)):
        value = mapping.get(key)
        if value is None:
            continue
        # YAML reads `1e-6` (no dot) as a string; LiteLLM accepts it, so do we.
        try:
            price = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            price = math.nan
        if not math.isfinite(price) or price < 0:
            raise GatewayConfigError(
                f"deployment {deployment.model_name!r}: `{source}.{key}` is {value!r}; "
                "it must be a non-negative number of USD per token, e.g. 1.5e-07"
            )
        return price
    return None
