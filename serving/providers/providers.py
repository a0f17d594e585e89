"""`Providers`: the gateway's one door to upstream models. Picks the direct fast path or LiteLLM per model name.

Built from the config, started and closed by the app lifespan; it never imports litellm unless a call needs it.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from serving.exceptions import GatewayConfigError
from serving.providers.deployment import Deployment
from serving.providers.direct import DirectClient
from serving.providers.price_map import BundledPriceMap
from serving.providers.pricing import PriceMap, request_cost
from serving.providers.result import DIRECT, LITELLM, CallPath, ProviderResult, ProviderStream
from serving.resilience.settings import LimitSettings
from serving.security.ssrf import Allowlist, GuardedResolver

if TYPE_CHECKING:
    from serving.providers.litellm_adapter import LiteLLMAdapter

LOCAL_PRICE_MAP_VARIABLE = "LITELLM_LOCAL_MODEL_COST_MAP"
"""Makes LiteLLM read its bundled price map at import instead of downloading one; set before importing it."""


class Providers:
    """Calls the deployments of `model_list` by `model_name`.

    A name takes the direct path when it has exactly one deployment, that deployment is `direct`, and
    `fast_path` is on. Names shared by several deployments always go through LiteLLM, so its
    `routing_strategy` (simple-shuffle, least-busy, latency-, cost- or usage-based-routing) picks among them.
    litellm is imported in `start()` only when some name goes through it, or when some deployment has no
    configured prices (LiteLLM's price map is then the fallback); importing it takes seconds.
    """

    def __init__(
        self,
        deployments: Sequence[Deployment],
        routing_strategy: str = "simple-shuffle",
        fast_path: bool = True,
        timeout_seconds: float = 600.0,
        router_settings: Mapping[str, Any] | None = None,
        *,
        limits: LimitSettings | None = None,
        allowlist: Allowlist | None = None,
        provider_params: Collection[str] = (),
    ) -> None:
        if not deployments:
            raise GatewayConfigError("model_list is empty; configure at least one deployment")
        groups: dict[str, list[Deployment]] = {}
        for deployment in deployments:
            groups.setdefault(deployment.model_name, []).append(deployment)
        self._groups = {name: tuple(group) for name, group in groups.items()}
        self._direct = {
            name: group[0] for name, group in self._groups.items() if fast_path and len(group) == 1 and group[0].direct
        }
        self._routing_strategy = routing_strategy
        self._timeout_seconds = timeout_seconds
        self._router_settings = dict(router_settings or {})
        self._limits = limits
        self._allowlist = allowlist or Allowlist()
        self._provider_params = tuple(provider_params)
        self._price_map: BundledPriceMap | None = None
        self._client: DirectClient | None = None
        self._adapter: LiteLLMAdapter | None = None
        self._started = False

    @property
    def names(self) -> tuple[str, ...]:
        """The distinct model names, in config order."""
        return tuple(self._groups)

    def deployment(self, name: str) -> Deployment:
        """The (first) deployment named `name`; KeyError when there is none."""
        return self.deployments(name)[0]

    def deployments(self, name: str) -> tuple[Deployment, ...]:
        """Every deployment named `name`, in config order; KeyError when there is none."""
        try:
            return self._groups[name]
        except KeyError:
            raise KeyError(f"no deployment is named {name!r}; check `name in Providers.names` first") from None

    def max_output_tokens(self, name: str) -> int | None:
        """The most tokens one answer of `name` can hold: `model_info.max_output_tokens`, else LiteLLM's price map,
        else None (the largest over the name's deployments)."""
        found: list[int] = []
        for deployment in self.deployments(name):
            configured = deployment.model_info.get("max_output_tokens")
            if isinstance(configured, int) and configured > 0:
                found.append(configured)
            elif self._price_map is not None:
                mapped = self._price_map.max_output_tokens(deployment.upstream_model, deployment.provider)
                found += [mapped] if mapped is not None else []
        return max(found) if found else None

    def max_cost(self, names: Sequence[str], input_tokens: int, output_tokens: int) -> float:
        """The most a call with these token counts can cost on any deployment of `names` (0 where unpriced)."""
        costs = [
            request_cost(deployment, input_tokens, output_tokens, None, self._price_map).usd
            for name in names
            for deployment in self.deployments(name)
        ]
        return max(costs, default=0.0)

    def path(self, name: str) -> CallPath:
        """How calls to `name` are made."""
        self.deployments(name)
        return DIRECT if name in self._direct else LITELLM

    async def start(self) -> None:
        """Create the shared HTTP client, and the LiteLLM router when needed. Call once, from the lifespan."""
        if self._started:
            return
        price_map: PriceMap | None = None
        every = [d for group in self._groups.values() for d in group]
        routed = [d for name, group in self._groups.items() if name not in self._direct for d in group]
        if any(d.prices is None for d in every):
            price_map = self._price_map = BundledPriceMap((d.upstream_model, d.provider) for d in every)
        if routed:
            # LiteLLM is imported only when a deployment needs it (~140 MB). Unless told otherwise, importing it
            # fetches its price map from the internet: the gateway makes no call the operator did not configure.
            os.environ[LOCAL_PRICE_MAP_VARIABLE] = "True"
            from serving.providers import litellm_adapter

            self._adapter = litellm_adapter.LiteLLMAdapter(
                routed,
                self._routing_strategy,
                self._timeout_seconds,
                self._router_settings,
                price_map,
                limits=self._limits,
                allowlist=self._allowlist,
                provider_params=self._provider_params,
            )
        if self._direct:
            resolver = GuardedResolver(self._allowlist)
            self._client = DirectClient(self._timeout_seconds, price_map, self._limits, resolver)
        self._started = True

    async def aclose(self) -> None:
        """Close the HTTP client and the LiteLLM router; safe to call twice."""
        client, adapter = self._client, self._adapter
        self._client = self._adapter = None
        self._started = False
        if client is not None:
            await client.aclose()
        if adapter is not None:
            await adapter.aclose()

    async def complete(self, model_name: str, body: Mapping[str, Any]) -> ProviderResult:
        """A non-streamed chat completion from `model_name` (the client's body; its `model` is replaced)."""
        direct = self._direct.get(model_name)
        if direct is not None:
            return await self._direct_client().complete(direct, body)
        return await self._litellm(model_name).complete(model_name, body)

    async def stream(self, model_name: str, body: Mapping[str, Any]) -> ProviderStream:
        """A streamed chat completion: upstream errors before the first byte raise here, as gateway errors."""
        direct = self._direct.get(model_name)
        if direct is not None:
            return await self._direct_client().stream(direct, body)
        return await self._litellm(model_name).stream(model_name, body)

    async def embed(self, model_name: str, body: Mapping[str, Any]) -> ProviderResult:
        """Embeddings from `model_name`."""
        direct = self._direct.get(model_name)
        if direct is not None:
            return await self._direct_client().embed(direct, body)
        return await self._litellm(model_name).embed(model_name, body)

    def _direct_client(self) -> DirectClient:
        if self._client is None:
            raise RuntimeError("Providers.start() has not been awaited (the app lifespan starts providers)")
        return self._client

    def _litellm(self, model_name: str) -> LiteLLMAdapter:
        self.deployments(model_name)
        if self._adapter is None:
            raise RuntimeError("Providers.start() has not been awaited (the app lifespan starts providers)")
        return self._adapter
