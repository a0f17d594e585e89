"""Request bodies cannot steer LiteLLM or the gateway: every keyword LiteLLM's completion and embedding calls
accept (and its router reads) that is not a documented OpenAI request field is refused with a 400 naming it, on
both call paths, before any upstream call; OpenAI's own fields reach the upstream, `user` and `metadata` on the
LiteLLM path too; the allow-lists are exactly the properties of OpenAI's API description."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from serving.exceptions import MAX_SHOWN_NAME, GatewayConfigError
from serving.request_fields import CHAT_FIELDS, EMBEDDINGS_FIELDS, EXTENSION_FIELD
from serving.server import running
from tests.attack.conftest import AUTH, CHAT, Upstream, chat_body, gateway_config

SPEC = Path(os.environ.get("ROUTEIQ_DATA_DIR", "../shared/routing-data")).parent / "specs" / "openai" / "openapi.yaml"
PATHS = ["direct", "litellm"]
EMBEDDINGS = "/v1/embeddings"
MOCK_TESTING = (
    "mock_testing_rate_limit_error",
    "mock_testing_fallbacks",
    "mock_testing_context_fallbacks",
    "mock_testing_content_policy_fallbacks",
)
"""LiteLLM's router reads these from the call's keywords to fake failures (not in its parameter list)."""
ROUTER_READS = ("disable_fallbacks", "max_fallbacks", "fallback_depth", "model_group", "specific_deployment")


def litellm_keywords() -> set[str]:
    """Every keyword LiteLLM's completion/embedding calls accept or its router reads from them."""
    import litellm
    from litellm.types.utils import all_litellm_params

    found = set(all_litellm_params) | set(MOCK_TESTING) | set(ROUTER_READS)
    for call in (litellm.completion, litellm.acompletion, litellm.embedding, litellm.aembedding):
        found |= {name for name, p in inspect.signature(call).parameters.items() if p.kind is not p.VAR_KEYWORD}
    found |= {"success_callback", "failure_callback", "callbacks", "request_timeout", "headers", "extra_headers"}
    return found


def dangerous(fields: frozenset[str]) -> list[str]:
    return sorted(litellm_keywords() - fields - {"model", "self", "kwargs", EXTENSION_FIELD})


@pytest.fixture(scope="module", params=PATHS)
def gateway(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"fields-{request.param}")
    with running(gateway_config(upstream.url, folder, fast_path=request.param == "direct")) as url:
        yield url


def spec_properties(schema: str) -> set[str]:
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]

    def props(name: str) -> set[str]:
        found: set[str] = set()
        for part in schemas[name].get("allOf", [schemas[name]]):
            ref = part.get("$ref")
            found |= props(ref.rsplit("/", 1)[-1]) if ref else set(part.get("properties", {}))
        return found

    return props(schema)


def test_the_allow_lists_are_openais_request_fields() -> None:
    assert spec_properties("CreateChatCompletionRequest") == CHAT_FIELDS
    assert spec_properties("CreateEmbeddingRequest") == EMBEDDINGS_FIELDS


def test_the_enumeration_is_real() -> None:
    """The keywords tested below include the ones the attack used, so the enumeration cannot come back empty."""
    names = dangerous(CHAT_FIELDS)
    assert len(names) > 300
    for known in ("headers", "success_callback", "langsmith_base_url", "mock_testing_rate_limit_error"):
        assert known in names
    assert "request_timeout" in names and "num_retries" in names and "fallbacks" in names


def shown(name: str) -> str:
    """A name as errors repeat it (long ones clipped)."""
    return name if len(name) <= MAX_SHOWN_NAME else name[:MAX_SHOWN_NAME] + "…"


def value_for(name: str) -> Any:
    """A plausible value: the parser must refuse the name whatever the value."""
    if name.endswith(("callback", "callbacks", "fallbacks")):
        return ["langsmith"]
    if name.startswith("mock_") or name.startswith("enable_") or name.startswith("disable_"):
        return True
    return {"Authorization": "Bearer attacker"} if "header" in name else 1


def test_every_litellm_keyword_in_a_chat_body_is_a_400_naming_it(gateway: str, upstream: Upstream) -> None:
    before = len(upstream.calls)
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as client:
        for name in dangerous(CHAT_FIELDS):
            for stream in (False, True):
                answer = client.post(CHAT, json=chat_body(stream=stream, **{name: value_for(name)}))
                assert answer.status_code == 400, (name, answer.text)
                error = answer.json()["error"]
                assert error["param"] == shown(name)
                assert error["code"] in ("unsupported_parameter", "forbidden_parameter")
                assert shown(name) in error["message"]
        assert client.post(CHAT, json=chat_body()).status_code == 200
    assert len(upstream.calls) == before + 1, "a refused body reached the upstream"


def test_every_litellm_keyword_in_an_embeddings_body_is_a_400(gateway: str, upstream: Upstream) -> None:
    before = len(upstream.calls)
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as client:
        for name in dangerous(EMBEDDINGS_FIELDS):
            answer = client.post(EMBEDDINGS, json={"model": "alpha", "input": "x", name: value_for(name)})
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["error"]["param"] == shown(name)
    assert len(upstream.calls) == before


def test_headers_in_a_body_never_reach_the_upstream(gateway: str, upstream: Upstream) -> None:
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as client:
        for body in (chat_body(), chat_body(stream=True)):
            body["headers"] = {"Authorization": "Bearer attacker", "X-Evil": "1"}
            assert client.post(CHAT, json=body).status_code == 400
        assert (
            client.post(EMBEDDINGS, json={"model": "alpha", "input": "x", "headers": {"X-Evil": "1"}}).status_code
            == 400
        )
        assert client.post(CHAT, json=chat_body()).status_code == 200
    for seen in upstream.seen:
        names = {name for name, _ in seen.headers}
        assert "x-evil" not in names
        assert all("attacker" not in value for _, value in seen.headers)


class Catcher(BaseHTTPRequestHandler):
    """A loopback server standing in for a logging service a callback would post the prompt to."""

    hits: list[str] = []  # noqa: RUF012 - per-test list set by the fixture

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def catcher() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("ThisCatcher", (Catcher,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_callback_in_the_body_registers_nothing_and_posts_nowhere(
    gateway: str, catcher: tuple[str, list[str]]
) -> None:
    import litellm

    url, hits = catcher
    callbacks = (list(litellm.success_callback), list(litellm.callbacks))
    body = chat_body(success_callback=["langsmith"], langsmith_base_url=url, langsmith_api_key="x")
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as client:
        answer = client.post(CHAT, json=body)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "success_callback"
        for _ in range(3):
            assert client.post(CHAT, json=chat_body()).status_code == 200
    assert hits == [] and (list(litellm.success_callback), list(litellm.callbacks)) == callbacks


def test_faked_failures_never_open_the_circuit(gateway: str, upstream: Upstream) -> None:
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as client:
        for name in (*MOCK_TESTING, "request_timeout", "timeout", "num_retries"):
            for _ in range(6):
                value = True if name.startswith("mock_") else 0.000001
                assert client.post(CHAT, json=chat_body(**{name: value})).status_code == 400
        for _ in range(3):
            answer = client.post(CHAT, json=chat_body())
            assert answer.status_code == 200, answer.text
        metrics = client.get("/metrics").text
    assert 'routeiq_circuit_state{model="alpha",state="open"}' not in metrics


OPENAI_ONLY = {
    "user": "user-7",
    "metadata": {"team": "red"},
    "seed": 7,
    "store": False,
    "safety_identifier": "s-1",
    "prompt_cache_key": "k-1",
    "verbosity": "low",
}


def test_openai_fields_reach_the_upstream_on_both_paths(gateway: str, upstream: Upstream) -> None:
    """`user` and `metadata` used to be dropped by LiteLLM; `verbosity` refused by it."""
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=30) as client:
        for stream in (False, True):
            start = len(upstream.seen)
            answer = client.post(CHAT, json=chat_body(stream=stream, **OPENAI_ONLY))
            assert answer.status_code == 200, answer.text
            sent = orjson.loads(bytes(upstream.seen[start].body))
            for name, value in OPENAI_ONLY.items():
                assert sent.get(name) == value, (name, sent)
            assert EXTENSION_FIELD not in sent
        start = len(upstream.seen)
        embedded = client.post(EMBEDDINGS, json={"model": "alpha", "input": "x", "user": "user-7"})
        assert embedded.status_code == 200, embedded.text
        assert orjson.loads(bytes(upstream.seen[start].body)).get("user") == "user-7"


def test_provider_params_are_forwarded_only_when_the_operator_lists_them(upstream: Upstream, tmp_path: Path) -> None:
    for fast_path in (True, False):
        config = gateway_config(
            upstream.url, tmp_path / str(fast_path), fast_path=fast_path, requests={"provider_params": ["top_k"]}
        )
        with running(config) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            start = len(upstream.seen)
            assert client.post(CHAT, json=chat_body(top_k=5)).status_code == 200
            assert orjson.loads(bytes(upstream.seen[start].body)).get("top_k") == 5
            refused = client.post(CHAT, json=chat_body(repetition_penalty=1.1))
            assert refused.status_code == 400 and "provider_params" in refused.json()["error"]["message"]


@pytest.mark.parametrize("name", ["headers", "extra_body", "api_base", "routeiq", "Top-K"])
def test_a_provider_param_that_picks_the_upstream_is_refused_at_load(
    upstream: Upstream, tmp_path: Path, name: str
) -> None:
    with pytest.raises(GatewayConfigError) as error:
        gateway_config(upstream.url, tmp_path, requests={"provider_params": [name, "top_k"]})
    assert "provider_params" in str(error.value) and name in str(error.value)


@pytest.mark.parametrize("name", ["success_callback", "num_retries", "mock_response", "metadata", "litellm_metadata"])
def test_a_provider_param_litellm_acts_on_stops_the_start(upstream: Upstream, name: str) -> None:
    from serving.providers.deployment import Deployment
    from serving.providers.litellm_adapter import LiteLLMAdapter

    deployment = Deployment.from_entry({"model_name": "alpha", "litellm_params": {"model": "openai/alpha"}})
    with pytest.raises(GatewayConfigError) as error:
        LiteLLMAdapter([deployment], provider_params=[name, "top_k"])
    assert repr(name) in str(error.value) and "top_k" not in str(error.value)
