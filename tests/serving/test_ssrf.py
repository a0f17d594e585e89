"""The SSRF guard: every address form that means loopback, private or metadata is refused, at config load and
at connect time; redirects are not followed. Real aiohttp requests to real loopback servers that count what
reaches them; DNS answers are injected (or `socket.getaddrinfo` is patched for one name), never looked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from aiohttp import web

from serving.config import parse_config
from serving.exceptions import GatewayConfigError, UpstreamError
from serving.providers.providers import Providers
from serving.security.ssrf import Allowlist, GuardedResolver, UnsafeURLError, check_url

PUBLIC = "93.184.216.34"
"""A globally routable address; only ever returned by an injected resolver, never connected to."""
LOOPBACK = Allowlist.parse(["127.0.0.0/8"])
METADATA_URL = "http://169.254.169.254/latest/meta-data/"
REBINDING_HOST = "rebinding.test"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} is an address literal; it must be decoded, not resolved")


def _answers(*rounds: Sequence[str]) -> Callable[[str, int], list[str]]:
    """A resolver that gives `rounds` in turn: the way a rebinding DNS server answers."""
    queue = [list(r) for r in rounds]
    return lambda host, port: queue.pop(0)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://127.0.0.1./", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://169.254.169.254/", "cloud metadata"),
        ("http://0xa9fea9fe/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("https://[fd00:ec2::254]/", "cloud metadata"),
        ("https://169.254.1.1/", "link-local"),
        ("https://10.1.2.3/", "private"),
        ("https://172.16.0.1/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://100.64.0.1/", "CGNAT"),
        ("https://[fc00::1]/", "private"),
        ("https://[64:ff9b:1::a00:1]/", "NAT64"),
        ("https://224.0.0.1/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
    ],
)
def test_every_form_of_a_blocked_address_is_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURLError, match=reason):
        check_url(url, lookup=_no_dns)


@pytest.mark.parametrize("url", ["https://256.0.0.1/", "https://08.0.0.1/", "https://1.2.3.0x/"])
def test_a_malformed_numeric_host_is_refused_not_resolved(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="malformed numeric IPv4"):
        check_url(url, lookup=_no_dns)


def test_a_public_https_upstream_passes_with_the_address_to_connect_to() -> None:
    checked = check_url("https://api.example.com/v1", lookup=lambda host, port: [PUBLIC])
    assert (checked.host, checked.port, str(checked.address)) == ("api.example.com", 443, PUBLIC)


@pytest.mark.parametrize("answers", [["127.0.0.1"], [PUBLIC, "127.0.0.1"], [PUBLIC, "::ffff:10.0.0.1"]])
def test_a_name_is_refused_when_any_of_its_addresses_is_blocked(answers: list[str]) -> None:
    with pytest.raises(UnsafeURLError, match=r"api\.example\.com"):
        check_url("https://api.example.com/v1", lookup=lambda host, port: answers)


@pytest.mark.parametrize(
    "url",
    [
        "http://evil@127.0.0.1/",
        "http://127.0.0.1@evil.com/",
        "https://user:secret@api.example.com/",
        "http://@127.0.0.1/",
        "http://evil.com\\@127.0.0.1/",
    ],
)
def test_user_info_tricks_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError, match=r"user info|not a valid URL"):
        check_url(url, LOOPBACK, lookup=lambda host, port: [PUBLIC])


@pytest.mark.parametrize("url", ["ftp://api.example.com/", "file:///etc/passwd", "gopher://api.example.com/", "/v1"])
def test_only_http_schemes_are_allowed(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="scheme"):
        check_url(url, lookup=lambda host, port: [PUBLIC])


def test_plain_http_needs_the_allow_list() -> None:
    with pytest.raises(UnsafeURLError, match=r"plain http.*upstream_allowlist"):
        check_url("http://api.example.com/v1", lookup=lambda host, port: [PUBLIC])
    allowed = Allowlist.parse(["api.example.com"])
    assert check_url("http://api.example.com/v1", allowed, lookup=lambda host, port: [PUBLIC]).port == 80


def test_the_allow_list_admits_loopback_by_network_or_by_name_but_never_metadata() -> None:
    assert str(check_url("http://127.0.0.1:8100/v1", LOOPBACK, lookup=_no_dns).address) == "127.0.0.1"
    assert str(check_url("http://[::ffff:127.0.0.1]:8100/v1", LOOPBACK, lookup=_no_dns).address) == "::ffff:7f00:1"
    by_name = Allowlist.parse(["vllm.internal"])
    assert check_url("http://vllm.internal:8000/v1", by_name, lookup=lambda host, port: ["10.0.0.7"]).port == 8000
    with pytest.raises(UnsafeURLError, match=r"10\.0\.0\.7"):
        check_url("http://other.internal:8000/v1", by_name, lookup=lambda host, port: ["10.0.0.7"])
    with pytest.raises(UnsafeURLError, match="cloud metadata"):
        check_url(METADATA_URL, Allowlist.parse(["169.254.0.0/16"]), lookup=_no_dns)


def test_the_name_that_resolves_public_then_loopback_passes_once_then_is_refused() -> None:
    lookup = _answers([PUBLIC], ["127.0.0.1"])
    assert str(check_url("https://api.example.com/v1", lookup=lookup).address) == PUBLIC
    with pytest.raises(UnsafeURLError, match="loopback"):
        check_url("https://api.example.com/v1", lookup=lookup)


def _config(api_base: str, allowlist: list[str] | None = None, model: str = "openai/m") -> dict[str, Any]:
    entry = {"model_name": "m", "litellm_params": {"model": model, "api_base": api_base, "api_key": "k"}}
    settings = {"security": {"upstream_allowlist": allowlist}} if allowlist is not None else {}
    return {"model_list": [entry], "routeiq_settings": settings}


@pytest.mark.parametrize("api_base", ["http://127.0.0.1:8100/v1", "http://2130706433:8100/v1", METADATA_URL])
def test_a_config_upstream_on_loopback_without_an_allow_list_is_refused_with_the_fix(api_base: str) -> None:
    with pytest.raises(GatewayConfigError, match=r"deployment 'm' \(openai/m\): api_base refused") as error:
        parse_config(_config(api_base))
    fix = "outbound calls may never reach it" if "169.254" in api_base else "add '127.0.0.1/32' to routeiq_settings"
    assert fix in str(error.value) and "\n" not in str(error.value)


def test_config_allow_list_admits_loopback_and_rejects_typos() -> None:
    config = parse_config(_config("http://127.0.0.1:8100/v1", ["127.0.0.0/8"]))
    assert config.settings.security.allowlist() == LOOPBACK
    no_base = {"model_list": [{"model_name": "m", "litellm_params": {"model": "anthropic/claude-3"}}]}
    assert parse_config(no_base).deployments[0].api_base is None
    with pytest.raises(GatewayConfigError, match=r"routeiq_settings\.security\.upstream_allowlist"):
        parse_config(_config("http://127.0.0.1:8100/v1", ["127.0.0.0/33"]))


def test_an_api_base_only_litellm_can_call_must_be_vouched_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bedrock (among others) is called by LiteLLM with a client the guard cannot reach at connect time: a public
    host name that passes the load-time check is refused unless the operator allow-lists it."""
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 443))]
    )
    bedrock = "bedrock/anthropic.claude-3-haiku"
    with pytest.raises(GatewayConfigError, match=r"list 'bedrock\.example' in routeiq_settings\.security"):
        parse_config(_config("https://bedrock.example/v1", model=bedrock))
    assert parse_config(_config("https://bedrock.example/v1", ["bedrock.example"], model=bedrock))
    for guarded in ("openai/m", "anthropic/claude-3-haiku-20240307", "groq/llama-3.1-8b-instant"):
        assert parse_config(_config("https://api.example/v1", model=guarded))  # checked when connecting instead


@contextlib.asynccontextmanager
async def _upstream(
    status: int = 200, location: str = "", host: str = "127.0.0.1"
) -> AsyncIterator[tuple[int, list[str]]]:
    """A real HTTP server on `host`: answers every POST with `status` (and `location`), records each path."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if location:
            return web.Response(status=status, headers={"location": location})
        return web.json_response(ANSWER, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port: int = runner.addresses[0][1]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


PATHS = ("direct", "litellm", "groq", "anthropic")
"""Every guarded call path: aiohttp with `GuardedResolver`; LiteLLM's OpenAI client over `guarded_client`; a
LiteLLM provider it runs over its aiohttp transport on `guarded_session` (Groq), and one that takes a handler
over that session (Anthropic). Both of the last follow redirects."""
MODELS = {
    "direct": "openai/m",
    "litellm": "openai/m",
    "groq": "groq/llama-3.1-8b-instant",
    "anthropic": "anthropic/claude-3-haiku-20240307",
}
ENDPOINTS = {"anthropic": "/v1/v1/messages"}
"""Where a path posts a chat, if not to /v1/chat/completions (LiteLLM appends `/v1/messages` to `api_base`)."""
FOLLOWERS = ("groq", "anthropic")
"""Paths whose client follows redirects, each hop checked by the guard."""


async def _complete(api_base: str, allowlist: Allowlist, path: str = "direct") -> Any:
    allowed_list = [str(n) for n in allowlist.networks] + sorted(allowlist.hosts)
    config = parse_config(_config(api_base, allowed_list, MODELS[path]))
    allowed = config.settings.security.allowlist()
    providers = Providers(config.deployments, allowlist=allowed, fast_path=path == "direct")
    await providers.start()
    try:
        return await providers.complete("m", BODY)
    finally:
        await providers.aclose()


def _rebinding_dns(monkeypatch: pytest.MonkeyPatch, rounds: list[list[str]]) -> list[str]:
    """`socket.getaddrinfo` answering `rounds` in turn for REBINDING_HOST (every other name as before)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != REBINDING_HOST:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in rounds.pop(0)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("allowed", "reached"), [(["93.184.216.0/24"], False), (["93.184.216.0/24", "127.0.0.1"], True)]
)
def test_rebinding_to_loopback_after_the_config_check_is_refused_at_connect_time(
    monkeypatch: pytest.MonkeyPatch, allowed: list[str], reached: bool, path: str
) -> None:
    """The config check sees the public address; the connection's own lookup gets loopback. Only when loopback
    is allow-listed (the control case) does the request reach the real server behind it."""

    async def scenario() -> tuple[list[str], UpstreamError | None]:
        async with _upstream() as (port, seen):
            asked = _rebinding_dns(monkeypatch, [[PUBLIC], ["127.0.0.1"]])
            try:
                await _complete(f"http://{REBINDING_HOST}:{port}/v1", Allowlist.parse(allowed), path)
            except UpstreamError as exc:
                return seen, exc
            finally:
                assert len(asked) >= 2  # once by the config check, then at connect time
            return seen, None

    seen, error = asyncio.run(scenario())
    if reached:  # (LiteLLM's other handlers then trip over the stand-in's answer; reaching it is the point)
        assert seen == [ENDPOINTS.get(path, "/v1/chat/completions")] and (error is None or path in FOLLOWERS)
    else:
        assert seen == [] and error is not None and error.status == 502
        if path == "direct":  # LiteLLM reports a connection error without its cause
            assert "127.0.0.1, which is loopback" in str(error)


def test_the_connect_time_resolver_refuses_and_aiohttp_never_connects() -> None:
    async def scenario() -> list[str]:
        async with _upstream() as (port, seen):
            resolver = GuardedResolver(lookup=lambda host, port: ["127.0.0.1"])
            with pytest.raises(OSError, match="loopback"):
                await resolver.resolve("anything.test", port)
            allowed = GuardedResolver(LOOPBACK, lookup=lambda host, port: ["127.0.0.1"])
            assert [r["host"] for r in await allowed.resolve("anything.test", port)] == ["127.0.0.1"]
            return seen

    assert asyncio.run(scenario()) == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("target", ["metadata", "loopback server"])
def test_a_redirect_is_not_followed(target: str, path: str) -> None:
    """The upstream (allow-listed 127.0.0.1) answers 302 to the metadata address or to a server on 127.0.0.2,
    which is not allow-listed; the gateway returns an upstream error and that second server counts no request.
    The direct path and LiteLLM's OpenAI client do not follow; LiteLLM's own transport follows, and the guard
    refuses the hop."""

    async def scenario() -> tuple[list[str], list[str], UpstreamError]:
        async with _upstream(host="127.0.0.2") as (other_port, other_seen):
            location = METADATA_URL if target == "metadata" else f"http://127.0.0.2:{other_port}/v1/chat/completions"
            async with _upstream(302, location) as (port, seen):
                with pytest.raises(UpstreamError) as error:
                    await _complete(f"http://127.0.0.1:{port}/v1", Allowlist.parse(["127.0.0.1/32"]), path)
        return seen, other_seen, error.value

    seen, other_seen, error = asyncio.run(scenario())
    assert seen == [ENDPOINTS.get(path, "/v1/chat/completions")] and other_seen == []
    assert error.status == 502
    refused = "which is cloud metadata" if target == "metadata" else "which is loopback"
    expected = {"direct": "redirect (302), which is not followed", "litellm": "(HTTP 302)"}
    assert expected.get(path, refused) in str(error)
