"""Schemathesis, in process, against the gateway's own OpenAPI document: requests generated from every
operation's declared body and parameters (valid ones, and ones that break the schema) must get a declared
status, content type and body, and never a 5xx the spec does not list (no 500 at all).

The app is `create_app` served through schemathesis's ASGI client, whose event-loop thread runs the real
lifespan; its deployments call the replay provider on loopback, so valid chat and embeddings calls succeed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.app import create_app
from tests.attack.conftest import AUTH, PROMPT, Upstream, gateway_config

Operation = APIOperation[Any, Any, Any, Any]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BODY_EXAMPLES = 150
"""Per generation mode, for an operation with a body or a path parameter."""
OTHER_EXAMPLES = 10
"""Parameterless GETs have little to vary; hypothesis stops once it has tried every distinct input."""
MIN_CASES = 1000
STEERED = (None, None, None, ("auto", False), ("auto", True), ("alpha", False), ("alpha", True), ("beta", False))
"""(model, stream) a valid chat or embeddings body is pointed at in 5 of 8 cases, so the upstream really answers."""


@pytest.fixture(scope="module")
def schema(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    app = create_app(gateway_config(upstream.url, tmp_path_factory.mktemp("schemathesis")))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()  # the gateway's lifespan runs until here, in schemathesis's loop thread


@dataclass
class Tally:
    """What a run saw: cases per operation and mode, answers per operation, status and content type."""

    cases: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


@pytest.mark.slow
def test_generated_requests_get_declared_answers(schema: Any, upstream: Upstream) -> None:
    tally = Tally()
    for result in schema.get_all_operations():
        operation: Operation = result.ok()
        varied = bool(operation.body or operation.path_parameters)
        # Without a body or path parameter there is nothing to break: negative mode has no cases to make.
        for mode in GenerationMode if varied else [GenerationMode.POSITIVE]:
            try:
                _runner(operation, mode, tally)()
            except Unsatisfiable:
                # A string path parameter cannot be made invalid: negative mode has nothing to send.
                assert mode is GenerationMode.NEGATIVE and not tally.cases[f"{operation.label} {mode.value}"]
    total = sum(tally.cases.values())
    print(f"{total} generated cases, {len(upstream.calls)} upstream calls: {dict(tally.cases)}")
    print(f"answers: {dict(sorted(tally.answers.items()))}")
    assert not tally.failures, "\n\n".join(tally.failures[:10])
    assert total >= MIN_CASES, tally.cases
    # Real upstream calls happened and succeeded, streamed and not, and invalid bodies were refused.
    for answer in (
        "POST /v1/chat/completions 200 application/json",
        "POST /v1/chat/completions 200 text/event-stream",
        "POST /v1/chat/completions 400",
        "POST /v1/embeddings 200 application/json",
        "POST /admin/keys 200 application/json",
    ):
        assert any(seen.startswith(answer) for seen in tally.answers), answer


def _runner(operation: Operation, mode: GenerationMode, tally: Tally) -> Callable[[], None]:
    """A hypothesis test of `operation` in `mode` that records each case and failure instead of raising, so
    one run sees every failure without shrinking (the seed is fixed, so a failure is reproducible)."""
    varied = operation.body or operation.path_parameters
    examples = BODY_EXAMPLES if varied else OTHER_EXAMPLES

    @given(case=operation.as_strategy(generation_mode=mode), steer=st.sampled_from(STEERED))
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case[Operation], steer: tuple[str, bool] | None) -> None:
        if mode is GenerationMode.POSITIVE and steer is not None:
            _steer(case, *steer)
        tally.cases[f"{operation.label} {mode.value}"] += 1
        try:
            response = case.call(headers=AUTH)
            media_type = response.headers.get("content-type", [""])[0].split(";")[0]
            tally.answers[f"{operation.label} {response.status_code} {media_type}"] += 1
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # every failure is collected and reported together
            tally.failures.append(f"{operation.label} [{mode.value}] {case.as_curl_command(headers=AUTH)}\n{exc}")

    return run


def _steer(case: Case[Operation], model: str, stream: bool) -> None:
    """Point a valid body at a configured model with a prompt the replay upstream recorded."""
    body = case.body
    if not isinstance(body, dict):
        return
    path = case.operation.path
    if path.endswith("/chat/completions"):
        body.update(model=model, messages=[{"role": "user", "content": PROMPT}], stream=stream)
    elif path.endswith("/embeddings") and model != "auto":
        body["model"] = model


def test_spec_declares_bodies_streams_and_errors(schema: Any) -> None:
    """The document itself: the bodies the routes parse, SSE for chat, the OpenAI error shape per status."""
    paths: dict[str, Any] = schema.raw_schema["paths"]
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["model", "messages"]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    for status in ("400", "401", "403", "404", "413", "429", "431", "502", "503", "504"):
        error = chat["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/OpenAIError"}, status
    for path, method in (("/v1/embeddings", "post"), ("/v1/feedback", "post"), ("/admin/keys", "post")):
        assert "requestBody" in paths[path][method], path
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
