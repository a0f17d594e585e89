"""The bad-input list of docs/security.md against a real gateway on loopback: each input gets its exact status
and code in the OpenAI error shape, with a message that says what to change; nothing reaches the upstream;
and the gateway serves a normal request right afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from serving.exceptions import InvalidRequestError
from serving.schemas import MAX_DEPTH, parse_body
from serving.server import running
from tests.attack.conftest import AUTH, CHAT, MASTER_KEY, UPSTREAM_MODELS, Upstream, chat_body, gateway_config

MAX_BODY = 256 * 1024
MAX_HEADERS = 8 * 1024
JSON = {"content-type": "application/json"}


@dataclass
class Gateway:
    """A client of the gateway, and how many upstream calls had been made when the test last looked."""

    client: httpx.Client
    upstream: Upstream
    seen: int = 0

    def post(self, path: str, content: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
        return self.client.post(path, content=content, headers={**JSON, **headers})

    def refuses(self, response: httpx.Response, status: int, code: str, *hints: str) -> dict[str, Any]:
        """`response` is the OpenAI error `code` with `status`, its message holds every hint, no upstream was
        called for it, and a normal request is answered afterwards. Returns the error object."""
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert list(body) == ["error"]
        error: dict[str, Any] = body["error"]
        assert list(error) == ["message", "type", "param", "code"]
        assert error["code"] == code, error
        for hint in hints:
            assert hint in error["message"], (hint, error["message"])
        assert len(self.upstream.calls) == self.seen, "the refused request reached the upstream"
        self.still_serves()
        return error

    def still_serves(self) -> None:
        answer = self.client.post(CHAT, json=chat_body())
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "4, says alpha"
        assert answer.headers["x-routeiq-model"] == "alpha"
        self.seen = len(self.upstream.calls)


@pytest.fixture(scope="module")
def base_url(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    limits = {"max_body_bytes": MAX_BODY, "max_header_bytes": MAX_HEADERS}
    with running(gateway_config(upstream.url, tmp_path_factory.mktemp("bad-input"), limits)) as url:
        yield url


@pytest.fixture
def gateway(base_url: str, upstream: Upstream) -> Iterator[Gateway]:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as client:
        yield Gateway(client, upstream, len(upstream.calls))


def chat_json(**fields: Any) -> bytes:
    return orjson.dumps(chat_body(**fields))


@pytest.mark.parametrize(
    "raw",
    [b'{"model": "alpha",', b"not json", b"", b"\xff\xfe{}", b'{"model": "alpha"} trailing', b"{'model': 'alpha'}"],
    ids=["truncated", "not-json", "empty", "not-utf8", "trailing-garbage", "single-quotes"],
)
def test_malformed_json_is_a_400(gateway: Gateway, raw: bytes) -> None:
    gateway.refuses(gateway.post(CHAT, raw), 400, "invalid_request_error", "not valid JSON", "send a JSON object")


@pytest.mark.parametrize("raw", [b"[]", b'"alpha"', b"null", b"42"], ids=["array", "string", "null", "number"])
def test_a_body_that_is_not_an_object_is_a_400(gateway: Gateway, raw: bytes) -> None:
    gateway.refuses(gateway.post(CHAT, raw), 400, "invalid_request_error", "must be a JSON object")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "model": "beta"}', "model"),
        (b'{"model": "alpha", "messages": [{"role": "user", "role": "system", "content": "hi"}]}', "role"),
        # A string with an escaped colon takes the slow, string-aware count; the repeat is still found.
        (b'{"model": "alpha", "messages": [{"role": "user", "content": "a\\u003a"}], "model": "beta"}', "model"),
    ],
    ids=["top-level", "nested", "escaped-colon"],
)
def test_a_repeated_key_is_a_400_naming_it(gateway: Gateway, raw: bytes, key: str) -> None:
    error = gateway.refuses(gateway.post(CHAT, raw), 400, "invalid_request_error", f"key {key!r} twice")
    assert "send each key once" in error["message"]


def test_an_escaped_colon_alone_is_no_repeat(gateway: Gateway) -> None:
    raw = b'{"model": "alpha", "messages": [{"role": "user", "content": "What is 2 + 2? Answer with one sentence."}],'
    raw += b' "user": "a\\u003ab"}'
    assert gateway.post(CHAT, raw).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        # Parses (orjson reads 1024 levels) but cannot be re-encoded for the upstream (254): was a 500.
        b'{"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 300 + b"]" * 300 + b"}",
    ],
    ids=["100k-brackets", "50k-objects", "300-levels-in-a-passthrough-field"],
)
def test_deeply_nested_json_is_a_400(gateway: Gateway, raw: bytes) -> None:
    gateway.refuses(gateway.post(CHAT, raw), 400, "invalid_request_error", "levels deep; flatten it")


def test_nesting_up_to_the_limit_passes(gateway: Gateway) -> None:
    deep = b"[" * 100 + b"]" * 100
    raw = b'{"model": "alpha", "messages": [{"role": "user", "content": "What is 2 + 2? Answer with one sentence."}]'
    tools = b', "tools": [{"type": "function", "function": {"name": "f", "parameters": {"nested": ' + deep + b"}}}]}"
    response = gateway.post(CHAT, raw + tools)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_the_depth_limit_is_exact(depth: int) -> None:
    """The top object counts as one level; the replay upstream has a lower limit of its own, so this is
    checked on the parser rather than end to end."""
    inner = depth - 1
    raw = b'{"x": ' + b"[" * inner + b"]" * inner + b"}"
    if depth <= MAX_DEPTH:
        assert parse_body(raw) == {"x": orjson.loads(b"[" * inner + b"]" * inner)}
    else:
        with pytest.raises(InvalidRequestError, match="levels deep"):
            parse_body(raw)


def test_a_huge_body_by_content_length_is_a_413(gateway: Gateway) -> None:
    big = chat_json(model="alpha", user="x" * (MAX_BODY + 1))
    response = gateway.post(CHAT, big)
    assert response.request.headers["content-length"] == str(len(big))
    gateway.refuses(response, 413, "request_too_large", str(MAX_BODY), "max_body_bytes", "send a shorter prompt")


def test_a_huge_chunked_body_is_a_413(gateway: Gateway) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"model": "alpha", "messages": [{"role": "user", "content": "'
        for _ in range(4 * MAX_BODY // 1024):
            yield b"x" * 1024
        yield b'"}]}'

    response = gateway.post(CHAT, body())
    assert response.request.headers["transfer-encoding"] == "chunked"
    gateway.refuses(response, 413, "request_too_large", "max_body_bytes")


@pytest.mark.parametrize("role", ["root", "", "System", 1, None], ids=["root", "empty", "capitalised", "int", "null"])
def test_an_invalid_message_role_is_a_400(gateway: Gateway, role: Any) -> None:
    raw = orjson.dumps({"model": "alpha", "messages": [{"role": role, "content": "hi"}]})
    error = gateway.refuses(gateway.post(CHAT, raw), 400, "invalid_request_error", "`messages.0.role`", "fix it")
    assert error["param"] == "messages.0.role"


def test_an_invalid_key_role_is_a_400(gateway: Gateway) -> None:
    response = gateway.post("/admin/keys", orjson.dumps({"team": "t", "role": "root"}))
    error = gateway.refuses(response, 400, "invalid_request_error", "`role`", "'admin', 'operator' or 'user'")
    assert error["param"] == "role"
    assert all(key["role"] != "root" for key in gateway.client.get("/admin/keys").json()["data"])


@pytest.mark.parametrize("field", ["rpm", "tpm"])
def test_an_absurd_key_limit_is_a_400(gateway: Gateway, field: str) -> None:
    response = gateway.post("/admin/keys", f'{{"{field}": {2**63}}}'.encode())
    error = gateway.refuses(response, 400, "invalid_request_error", f"`{field}`")
    assert error["param"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"team": "ops\u0000root"}, "team"),
        ({"team": "ops\r\nX-Injected: 1"}, "team"),
        ({"allowed_models": [""]}, "allowed_models"),
        ({"allowed_models": ["a" * 257]}, "allowed_models"),
        ({"allowed_models": ["alpha\nbeta"]}, "allowed_models"),
    ],
)
def test_control_characters_and_oversized_names_in_a_key_are_a_400(
    gateway: Gateway, body: dict[str, object], field: str
) -> None:
    before = len(gateway.client.get("/admin/keys").json()["data"])
    response = gateway.post("/admin/keys", orjson.dumps(body))
    error = gateway.refuses(response, 400, "invalid_request_error", f"`{field}")
    assert str(error["param"]).startswith(field)
    assert len(gateway.client.get("/admin/keys").json()["data"]) == before  # nothing was stored


def test_revoking_an_unknown_key_is_a_404(gateway: Gateway) -> None:
    response = gateway.client.delete("/admin/keys/no-such-key")
    assert response.status_code == 404
    error = orjson.loads(response.content)["error"]
    assert error["code"] == "key_not_found" and "GET /admin/keys" in error["message"]


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("max_tokens", -1, "greater than or equal to 1"),
        ("max_tokens", 0, "greater than or equal to 1"),
        ("max_tokens", 10**12, "less than or equal to 1000000"),
        ("max_tokens", "abc", "valid integer"),
        ("max_tokens", 1.5, "valid integer"),
        ("max_tokens", True, "valid integer"),
        ("max_completion_tokens", 10**12, "less than or equal to 1000000"),
        ("max_completion_tokens", -5, "greater than or equal to 1"),
        ("n", 0, "greater than or equal to 1"),
        ("n", 10**9, "less than or equal to 128"),
        ("n", "2", "valid integer"),
    ],
)
def test_absurd_max_tokens_and_n_are_a_400(gateway: Gateway, field: str, value: Any, hint: str) -> None:
    error = gateway.refuses(gateway.post(CHAT, chat_json(**{field: value})), 400, "invalid_request_error", hint)
    assert error["param"] == field
    assert f"`{field}`" in error["message"]


@pytest.mark.parametrize(
    ("metadata", "hint"),
    [
        ({f"k{i}": "v" for i in range(17)}, "at most 16 items"),
        ({"k" * 65: "v"}, "at most 64 characters"),
        ({"note": "v" * 513}, "at most 512 characters"),
        ({"note": {"nested": "x"}}, "valid string"),
        ({"note": 7}, "valid string"),
        (["a"], "valid dictionary"),
    ],
    ids=["17-pairs", "long-key", "long-value", "object-value", "number-value", "not-a-map"],
)
def test_metadata_beyond_openais_bounds_is_a_400(gateway: Gateway, metadata: Any, hint: str) -> None:
    """OpenAI bounds `metadata` to 16 string pairs (keys 64, values 512 characters); it was forwarded unbounded."""
    error = gateway.refuses(gateway.post(CHAT, chat_json(metadata=metadata)), 400, "invalid_request_error", hint)
    assert error["param"] is not None and error["param"].startswith("metadata")


def test_metadata_within_the_bounds_passes(gateway: Gateway) -> None:
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    assert gateway.post(CHAT, chat_json(metadata=metadata)).status_code == 200


def test_sane_max_tokens_and_n_pass(gateway: Gateway) -> None:
    response = gateway.post(CHAT, chat_json(max_tokens=1_000_000, max_completion_tokens=16, n=1))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "model",
    [
        "../../etc/passwd",
        "gpt-4\r\nX-Injected: 1",
        "%2e%2e/",
        "..%2f..%2fadmin",
        "alpha\x00",
        "alpha/../beta",
        " alpha",
    ],
    ids=["traversal", "crlf", "encoded-dots", "encoded-slashes", "nul", "dot-segments", "leading-space"],
)
@pytest.mark.parametrize("path", [CHAT, "/v1/embeddings"])
def test_traversal_and_crlf_model_names_are_unknown_models(gateway: Gateway, model: str, path: str) -> None:
    fields = {"input": "hi"} if path.endswith("embeddings") else {"messages": [{"role": "user", "content": "hi"}]}
    response = gateway.post(path, orjson.dumps({"model": model, **fields}))
    error = gateway.refuses(response, 404, "model_not_found", repr(model), "GET /v1/models")
    assert error["param"] == "model"
    assert "x-injected" not in response.headers
    assert "x-routeiq-model" not in response.headers  # set only once a configured deployment was chosen
    assert "\r" not in response.text and "\n" not in response.text  # the name is quoted with escapes


def test_a_traversal_in_the_path_is_an_unknown_route(gateway: Gateway) -> None:
    response = gateway.client.get("/v1/%2e%2e/admin/keys")
    gateway.refuses(response, 404, "unknown_route", "does not exist", "/v1/chat/completions")


def test_the_model_header_names_only_configured_deployments(gateway: Gateway) -> None:
    for model in ("auto", *UPSTREAM_MODELS):
        response = gateway.post(CHAT, chat_json(model=model))
        assert response.status_code == 200
        assert response.headers["x-routeiq-model"] in UPSTREAM_MODELS


@pytest.mark.parametrize(
    "headers",
    [{"x-padding": "p" * MAX_HEADERS}, {f"x-pad-{i}": "p" * 100 for i in range(100)}],
    ids=["one-big-header", "many-headers"],
)
def test_oversized_headers_are_a_431(gateway: Gateway, headers: dict[str, str]) -> None:
    response = gateway.post(CHAT, chat_json(), **headers)
    gateway.refuses(response, 431, "request_headers_too_large", str(MAX_HEADERS), "max_header_bytes")


@pytest.mark.parametrize(
    "second",
    [f"Bearer {MASTER_KEY}", "Bearer sk-other", "Basic dXNlcjpwYXNz"],
    ids=["identical", "different-key", "basic"],
)
@pytest.mark.parametrize("path", [CHAT, "/admin/keys"])
def test_two_authorization_headers_are_a_401(gateway: Gateway, base_url: str, second: str, path: str) -> None:
    headers = [("authorization", f"Bearer {MASTER_KEY}"), ("authorization", second), *JSON.items()]
    with httpx.Client(base_url=base_url) as bare:  # no default Authorization: only the headers under test
        response = bare.post(path, content=chat_json(), headers=headers)
    gateway.refuses(response, 401, "invalid_api_key", "2 Authorization headers", "send exactly one")


@pytest.mark.parametrize("name", ["x-api-key", "api-key"])
def test_other_key_headers_are_never_credentials(gateway: Gateway, base_url: str, name: str) -> None:
    """Only Authorization is read: a different key beside it changes nothing, and alone it admits no one."""
    beside = gateway.post(CHAT, chat_json(), **{name: "sk-other"})
    assert beside.status_code == 200, beside.text
    gateway.seen = len(gateway.upstream.calls)
    with httpx.Client(base_url=base_url) as bare:
        alone = bare.post(CHAT, content=chat_json(), headers={name: MASTER_KEY, **JSON})
    gateway.refuses(alone, 401, "invalid_api_key", "send `Authorization: Bearer <key>`")
