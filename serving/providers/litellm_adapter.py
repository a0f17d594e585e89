"""The one module that imports litellm: a `litellm.Router` over the deployments, its answers as OpenAI bytes,
its exceptions as gateway errors, and LiteLLM's bundled price map. Imported lazily by `Providers.start()`.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Final

import litellm
import orjson
from litellm.exceptions import Timeout
from litellm.litellm_core_utils.core_helpers import UPSTREAM_USAGE_COST
from litellm.litellm_core_utils.get_supported_openai_params import get_supported_openai_params
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler
from litellm.router import Router
from litellm.types.router import RouterRateLimitError
from litellm.types.utils import all_litellm_params

from serving.exceptions import (
    GatewayConfigError,
    GatewayError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from serving.providers import sse
from serving.providers.accounting import Meter
from serving.providers.deployment import OPENAI_COMPATIBLE, Deployment
from serving.providers.pricing import PriceMap
from serving.providers.result import LITELLM, Events, ProviderResult, ProviderStream
from serving.providers.upstream_errors import status_error
from serving.request_fields import CHAT_FIELDS, EMBEDDINGS_FIELDS, check_fields
from serving.resilience.deadlines import Deadlines
from serving.resilience.settings import LimitSettings
from serving.security.guarded_httpx import guarded_client
from serving.security.ssrf import Allowlist, guarded_session

PROVIDER_KEYWORDS: Final = frozenset({"thinking"})
"""Keywords of `litellm.completion` that are provider request fields LiteLLM translates, not its own controls."""
READ_FROM_KEYWORDS: Final = frozenset(
    {"success_callback", "failure_callback", "callbacks", "drop_params", "additional_drop_params", "verbose"}
    | {"disable_fallbacks", "max_fallbacks", "model_group", "specific_deployment", "session_id", "config"}
)
"""Controls LiteLLM reads from a call's keywords that its own parameter list leaves out."""
CONTROL_PREFIXES: Final = ("mock_", "litellm_", "_")
"""LiteLLM's mocks (`mock_testing_*`, `mock_delay`, ...), its internals, and private keywords."""
ROUTER_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType({"num_retries": 0, "disable_cooldowns": True})
"""No retries and no cooldowns unless `router_settings` asks: the gateway reports each upstream failure as
it happened, and a single-deployment name would otherwise turn one failure into minutes of 429s."""
PLACEHOLDER_KEY: Final = "no-key"
HANDLED: Final = frozenset({"anthropic"})
"""Providers whose LiteLLM handler takes a `client=` HTTP handler (not an OpenAI SDK client): names served only
by these get the guarded handler with each call."""
CHAT: Final = "chat_completion"
EMBEDDINGS: Final = "embeddings"
CORE_FIELDS: Final = frozenset({"messages", "input", "stream", "stream_options"})
"""Fields LiteLLM must see as keywords to make the call at all."""
LITELLM_READS: Final = frozenset({"metadata"})
"""OpenAI request fields that are also LiteLLM controls: never passed as keywords (only in `extra_body`, to
OpenAI-compatible upstreams; other providers have no such field, so it is dropped for them)."""
_LITELLM_PREFIX: Final = re.compile(r"^(?:litellm\.\w+: )?(?:\w+: )?(?:\w+(?:Exception|Error) - )?")


class LiteLLMAdapter:
    """Every call through one `litellm.Router`; its routing strategy picks among deployments sharing a name."""

    def __init__(
        self,
        deployments: Sequence[Deployment],
        routing_strategy: str = "simple-shuffle",
        timeout_seconds: float = 600.0,
        router_settings: Mapping[str, Any] | None = None,
        price_map: PriceMap | None = None,
        *,
        limits: LimitSettings | None = None,
        allowlist: Allowlist | None = None,
        provider_params: Collection[str] = (),
    ) -> None:
        self._price_map = price_map
        self._limits = limits or LimitSettings()
        refused = refused_params(provider_params)
        if refused:
            raise GatewayConfigError(
                f"routeiq_settings.requests.provider_params lists {', '.join(map(repr, refused))}, which LiteLLM "
                "acts on itself (callbacks, retries, credentials, routing) instead of sending upstream; remove it"
            )
        self._fields = _Fields(CHAT_FIELDS | frozenset(provider_params), EMBEDDINGS_FIELDS | frozenset(provider_params))
        # The SSRF guard at connect time on LiteLLM's calls. OpenAI and Azure deployments use the OpenAI SDK,
        # over `litellm.aclient_session` (process-wide: one gateway per process, as `routeiq serve` runs), which
        # follows no redirect. Providers LiteLLM runs over its aiohttp transport take the session passed with
        # each call, and those that take an HTTP handler (Anthropic) a handler over that session; its resolver
        # and request check see every connection, redirect hops included.
        allowed = allowlist or Allowlist()
        self._client = guarded_client(allowed)
        litellm.aclient_session = self._client
        self._session = guarded_session(allowed)
        self._handler = AsyncHTTPHandler(timeout=timeout_seconds, shared_session=self._session)
        groups: dict[str, set[str]] = {}
        for deployment in deployments:
            groups.setdefault(deployment.model_name, set()).add(deployment.provider)
        self._guards = {
            name: {"shared_session": self._session, **({"client": self._handler} if providers <= HANDLED else {})}
            for name, providers in groups.items()
        }
        self._compatible = {name for name, providers in groups.items() if providers <= OPENAI_COMPATIBLE}
        self._supported: dict[tuple[str, str], frozenset[str]] = {}
        """(model name, request type) → the OpenAI fields LiteLLM forwards for it, looked up once."""
        # LiteLLM caches OpenAI clients (around the session of their day) by key and base URL only.
        litellm.in_memory_llm_clients_cache.flush_cache()  # type: ignore[no-untyped-call]
        self._by_id: dict[str, Deployment] = {}
        model_list = [self._entry(index, deployment) for index, deployment in enumerate(deployments)]
        settings = {**ROUTER_DEFAULTS, "timeout": timeout_seconds, **(router_settings or {})}
        try:
            self._router = Router(model_list=model_list, routing_strategy=routing_strategy, **settings)
        except (TypeError, ValueError) as exc:
            raise GatewayConfigError(f"LiteLLM refused the model_list or router_settings: {exc}") from exc

    def _entry(self, index: int, deployment: Deployment) -> dict[str, Any]:
        # Our own ids let an answer (or a failure) name the deployment LiteLLM picked.
        model_id = str(deployment.model_info.get("id") or f"{deployment.model_name}#{index}")
        self._by_id[model_id] = deployment
        params = dict(deployment.litellm_params)
        if deployment.provider in OPENAI_COMPATIBLE and deployment.api_base and not deployment.api_key:
            # A keyless OpenAI-compatible upstream (the direct path sends no key); LiteLLM's client insists on one.
            params["api_key"] = PLACEHOLDER_KEY
        info = {**deployment.model_info, "id": model_id}
        return {"model_name": deployment.model_name, "litellm_params": params, "model_info": info}

    async def aclose(self) -> None:
        """Drop the router's global callbacks and close the guarded client. LiteLLM's other cached HTTP clients
        are shared by every router in the process (per event loop), so they are left open for the others."""
        self._router.retire()
        if litellm.aclient_session is self._client:
            litellm.aclient_session = None
            litellm.in_memory_llm_clients_cache.flush_cache()  # type: ignore[no-untyped-call]
        await self._client.aclose()
        await self._handler.close()  # type: ignore[no-untyped-call]
        await self._session.close()

    async def complete(self, model_name: str, body: Mapping[str, Any]) -> ProviderResult:
        """A non-streamed chat completion, re-encoded as OpenAI JSON."""
        try:
            async with Deadlines(self._limits, f"model {model_name!r}").total():
                kwargs = self._kwargs(model_name, body, self._fields.chat)
                response = await self._router.acompletion(model=model_name, **kwargs, **self._guards[model_name])
        except Exception as exc:
            raise self._error(exc, model_name) from exc
        data = _openai_dict(response)
        return self._meter(response, model_name, body).result(orjson.dumps(data), data)

    async def stream(self, model_name: str, body: Mapping[str, Any]) -> ProviderStream:
        """A streamed chat completion as OpenAI SSE; the usage chunk reaches the client only if it asked."""
        kwargs = self._kwargs(model_name, body, self._fields.chat)
        options = body.get("stream_options")
        client_options = dict(options) if isinstance(options, Mapping) else {}
        kwargs.update(stream=True, stream_options={**client_options, "include_usage": True})
        deadlines = Deadlines(self._limits, f"model {model_name!r}")
        try:
            async with deadlines.first_byte():
                wrapper = await self._router.acompletion(model=model_name, **kwargs, **self._guards[model_name])
        except Exception as exc:
            raise self._error(exc, model_name) from exc
        meter = self._meter(wrapper, model_name, body)
        events = _events(wrapper, deadlines, partial(self._error, model_name=model_name, chosen=meter.deployment))
        include_usage = client_options.get("include_usage") is True
        return ProviderStream(events, meter.summary, include_usage, meter.deployment.label)

    async def embed(self, model_name: str, body: Mapping[str, Any]) -> ProviderResult:
        """Embeddings, re-encoded as OpenAI JSON."""
        try:
            async with Deadlines(self._limits, f"model {model_name!r}").total():
                kwargs = self._kwargs(model_name, body, self._fields.embeddings, EMBEDDINGS)
                response = await self._router.aembedding(model=model_name, **kwargs, **self._guards[model_name])
        except Exception as exc:
            raise self._error(exc, model_name) from exc
        data = _openai_dict(response)
        return self._meter(response, model_name, body).result(orjson.dumps(data), data)

    def _kwargs(
        self, model_name: str, body: Mapping[str, Any], allowed: frozenset[str], request_type: str = CHAT
    ) -> dict[str, Any]:
        """The body as LiteLLM keywords. Only allow-listed fields pass (the request schema has refused the rest;
        this is the second line). For OpenAI-compatible upstreams, fields LiteLLM would drop or act on itself
        (`user`, `metadata`, newer OpenAI fields) travel in `extra_body`, which LiteLLM sends as they are."""
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        supported = self._supported.get((model_name, request_type))
        if supported is None:
            deployment = self.deployment_of(model_name)
            supported = _supported(deployment.upstream_model, deployment.provider, request_type)
            self._supported[(model_name, request_type)] = supported
        for key, value in body.items():
            if key == "model":
                continue
            if key not in allowed:
                check_fields({key: value}, allowed)  # raises the 400 that names it
            if key in CORE_FIELDS or (key in supported and key not in LITELLM_READS):
                kwargs[key] = value
            elif model_name in self._compatible:
                extra[key] = value
            elif key not in LITELLM_READS:
                kwargs[key] = value
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    def deployment_of(self, model_name: str) -> Deployment:
        """The first deployment named `model_name`."""
        return next(d for d in self._by_id.values() if d.model_name == model_name)

    def _meter(self, answer: object, model_name: str, body: Mapping[str, Any]) -> Meter:
        hidden = getattr(answer, "_hidden_params", None) or {}
        deployment = self._by_id.get(str(hidden.get("model_id")))
        if deployment is None:  # LiteLLM did not say: any deployment of the name has the same provider
            deployment = self.deployment_of(model_name)
        return Meter(deployment, LITELLM, self._price_map, body)

    def _error(self, exc: Exception, model_name: str, chosen: Deployment | None = None) -> GatewayError:
        """The gateway error for a LiteLLM exception, naming the deployment that failed when it is known."""
        if isinstance(exc, GatewayError):
            return exc
        failed = self._by_id.get(str(getattr(exc, "failed_deployment_id", None))) or chosen
        where = failed.label if failed is not None else f"model {model_name!r}"
        if isinstance(exc, Timeout):
            return UpstreamTimeoutError(f"{where} did not answer in time ({_message(exc)})")
        if isinstance(exc, RouterRateLimitError):
            wait = str(math.ceil(exc.cooldown_time)) if exc.cooldown_time else None
            return UpstreamRateLimitError(f"{where}: every deployment is cooling down after failures ({exc})", wait)
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            return status_error(where, status, _message(exc), _retry_after(exc))
        return UpstreamError(f"{where} failed ({type(exc).__name__}: {_message(exc)})")


@dataclass(frozen=True, slots=True)
class _Fields:
    """The request fields this adapter passes on: OpenAI's, plus the operator's provider parameters."""

    chat: frozenset[str]
    embeddings: frozenset[str]


def control_keywords() -> frozenset[str]:
    """Every keyword LiteLLM's calls act on themselves (callbacks, credentials, retries, mocks, routing...):
    its own parameter list and the keywords of `completion`/`embedding` that are not OpenAI request fields."""
    signatures = (*inspect.signature(litellm.completion).parameters, *inspect.signature(litellm.embedding).parameters)
    openai = CHAT_FIELDS | EMBEDDINGS_FIELDS | PROVIDER_KEYWORDS
    return frozenset(all_litellm_params) | (frozenset(signatures) - openai) | READ_FROM_KEYWORDS


def refused_params(names: Collection[str]) -> list[str]:
    """The `names` LiteLLM would act on itself rather than send upstream (the operator may not enable them)."""
    controls = control_keywords()
    return sorted(n for n in names if n in controls or n.startswith(CONTROL_PREFIXES) or n.endswith("_callback"))


def _supported(model: str, provider: str, request_type: str) -> frozenset[str]:
    found = get_supported_openai_params(model=model, custom_llm_provider=provider, request_type=request_type)  # type: ignore[arg-type]
    return frozenset(found or ())


async def _events(wrapper: Any, deadlines: Deadlines, error: Callable[[Exception], GatewayError]) -> Events:
    """LiteLLM's chunks as OpenAI SSE events, then `[DONE]`; failures mid-stream, and missed deadlines (first
    chunk, gap between chunks, total), become gateway errors."""
    chunks: AsyncIterator[Any] = aiter(wrapper)
    wait = deadlines.first_byte
    try:
        while True:
            async with wait():
                chunk = await anext(chunks, None)
            if chunk is None:
                break
            wait = deadlines.next_event
            data = _openai_dict(chunk)
            for choice in data.get("choices", ()):
                choice.setdefault("finish_reason", None)  # OpenAI sends it on every chunk, null until the end
            yield sse.encode(data), data
    except Exception as exc:
        raise error(exc) from exc
    finally:
        await wrapper.aclose()
    yield sse.DONE_EVENT, sse.DONE


def _openai_dict(answer: Any) -> dict[str, Any]:
    """The answer as the OpenAI JSON object, with `usage.cost` as the upstream reported it (or absent).

    LiteLLM writes its own bill into a stream's `usage.cost` and keeps the upstream's figure in the hidden
    `upstream_usage_cost`; the client, and the cost source the gateway records, get the upstream's.
    """
    data: dict[str, Any] = answer.model_dump(mode="json", exclude_none=True)
    hidden = getattr(answer, "_hidden_params", None)
    usage = data.get("usage")
    if isinstance(hidden, dict) and UPSTREAM_USAGE_COST in hidden and isinstance(usage, dict):
        upstream = hidden[UPSTREAM_USAGE_COST]
        if upstream is None:
            usage.pop("cost", None)
        else:
            usage["cost"] = upstream
    return data


def _message(exc: BaseException) -> str:
    """LiteLLM's message without its class-name prefixes and its "LiteLLM: model group ..." epilogue."""
    text = str(getattr(exc, "message", None) or exc)
    first = text.split("\n\n", 1)[0].strip()
    return _LITELLM_PREFIX.sub("", first, count=1) or first


def _retry_after(exc: BaseException) -> str | None:
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if headers is not None and headers.get("retry-after"):
            return str(headers.get("retry-after"))
    return None
