"""Which top-level body fields of an OpenAI request may reach a provider call: an allow-list. OpenAI's documented
request fields are forwarded, RouteIQ's own extension is consumed, the provider parameters the operator enables
(`routeiq_settings.requests.provider_params`) are forwarded too, and every other field is refused by name.

Pure data and one check. The lists mirror OpenAI's API description (tests compare them with
`shared/specs/openai/openapi.yaml`); nothing here knows LiteLLM.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from serving.exceptions import ForbiddenParameterError, UnsupportedParameterError

CHAT_FIELDS: Final = frozenset(
    {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n", "stop"}
    | {"temperature", "top_p", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs"}
    | {"seed", "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"}
    | {"user", "metadata", "store", "service_tier", "modalities", "audio", "prediction", "reasoning_effort"}
    | {"verbosity", "web_search_options", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options"}
    | {"safety_identifier", "moderation"}
)
"""Every property of OpenAI's `CreateChatCompletionRequest`."""
EMBEDDINGS_FIELDS: Final = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
"""Every property of OpenAI's `CreateEmbeddingRequest`."""
EXTENSION_FIELD: Final = "routeiq"
"""Body extension `{"routeiq": {"cost_weight": λ}}`: read by the gateway, removed before the body goes upstream."""
UPSTREAM_CHOICE: Final = frozenset(
    {"api_base", "base_url", "api_key", "api_version", "organization", "headers", "extra_headers", "extra_body"}
)
"""Fields that would pick the upstream, its credentials or its HTTP request: refused with their own message."""


def check_fields(body: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse the first field of `body` that is neither in `allowed` nor the extension (400 naming it)."""
    for name in body:
        if name in allowed or name == EXTENSION_FIELD:
            continue
        if name in UPSTREAM_CHOICE:
            raise ForbiddenParameterError(name)
        raise UnsupportedParameterError(name)


def forwarded(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` as it goes upstream: without the extension."""
    return {name: value for name, value in body.items() if name != EXTENSION_FIELD}
