"""The fast path to OpenAI-compatible upstreams: the client's JSON with `model` swapped, over one shared
keep-alive `httpx.AsyncClient`; answers go back as the upstream's bytes. No pydantic, no litellm here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
import orjson

from serving.exceptions import UpstreamError, UpstreamTimeoutError
from serving.providers import sse
from serving.providers.accounting import Meter
from serving.providers.deployment import Deployment
from serving.providers.pricing import PriceMap
from serving.providers.result import DIRECT, Events, ProviderResult, ProviderStream
from serving.providers.upstream_errors import body_message, status_error

CHAT: Final = "chat/completions"
EMBEDDINGS: Final = "embeddings"
MAX_CONNECTIONS: Final = 1000
MAX_KEEPALIVE: Final = 200
CONNECT_TIMEOUT_SECONDS: Final = 10.0


class DirectClient:
    """Calls deployments whose `direct` is True. Built in the app lifespan; `aclose()` ends its connections."""

    def __init__(self, timeout_seconds: float, price_map: PriceMap | None = None) -> None:
        self._price_map = price_map
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, CONNECT_TIMEOUT_SECONDS)),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE),
        )

    async def aclose(self) -> None:
        """Close the shared client and its pooled connections."""
        await self._client.aclose()

    async def complete(self, deployment: Deployment, body: Mapping[str, Any]) -> ProviderResult:
        """A non-streamed chat completion: the upstream's body, unchanged."""
        response = await self._send(deployment, CHAT, {**body, "model": deployment.upstream_model}, stream=False)
        return self._result(deployment, body, response.content, "choices")

    async def embed(self, deployment: Deployment, body: Mapping[str, Any]) -> ProviderResult:
        """Embeddings: the upstream's body, unchanged."""
        response = await self._send(deployment, EMBEDDINGS, {**body, "model": deployment.upstream_model}, stream=False)
        return self._result(deployment, body, response.content, "data")

    async def stream(self, deployment: Deployment, body: Mapping[str, Any]) -> ProviderStream:
        """A streamed chat completion. Upstream is always asked for the usage chunk (to account the call);
        it reaches the client only when the client asked for it too."""
        options = body.get("stream_options")
        client_options = dict(options) if isinstance(options, Mapping) else {}
        payload = {
            **body,
            "model": deployment.upstream_model,
            "stream": True,
            "stream_options": {**client_options, "include_usage": True},
        }
        response = await self._send(deployment, CHAT, payload, stream=True)
        meter = Meter(deployment, DIRECT, self._price_map, body)
        include_usage = client_options.get("include_usage") is True
        return ProviderStream(_events(response, deployment.label), meter.summary, include_usage, deployment.label)

    async def _send(
        self, deployment: Deployment, endpoint: str, payload: dict[str, Any], stream: bool
    ) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        timeout = deployment.timeout(stream)
        request = self._client.build_request(
            "POST",
            f"{deployment.api_base}/{endpoint}",
            content=orjson.dumps(payload),
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
        )
        try:
            response = await self._client.send(request, stream=stream)
            if response.status_code >= httpx.codes.BAD_REQUEST:
                content = await response.aread()
                await response.aclose()
                message = body_message(content, response.status_code)
                raise status_error(deployment.label, response.status_code, message, response.headers.get("retry-after"))
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(f"{deployment.label} did not answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"{deployment.label} could not be reached ({type(exc).__name__}: {exc}); check that its api_base is up"
            ) from exc
        return response

    def _result(self, deployment: Deployment, body: Mapping[str, Any], content: bytes, key: str) -> ProviderResult:
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise UpstreamError(
                f"{deployment.label} answered 200 with a body that is not an OpenAI response (no `{key}` list): "
                f"{body_message(content, 200)}"
            )
        return Meter(deployment, DIRECT, self._price_map, body).result(content, data)


async def _events(response: httpx.Response, where: str) -> Events:
    """The upstream's SSE events as they arrive, parsed for accounting; the response is closed at the end."""
    try:
        async for event in sse.events(response.aiter_bytes()):
            yield event, sse.parse(event)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{where} stopped sending mid-stream ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{where} broke off the stream ({type(exc).__name__}: {exc})") from exc
    finally:
        await response.aclose()
