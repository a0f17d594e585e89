"""Secret scrubbing: each pattern on its own, text that must pass unchanged, the logging filter, and canaries
planted in a real gateway on loopback whose upstream echoes the request's credentials and body back."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from serving.api_error import error_response
from serving.background_server import running_server
from serving.config import parse_config
from serving.exceptions import AuthenticationError, ForbiddenParameterError, UpstreamError
from serving.providers.upstream_errors import MAX_MESSAGE_CHARS, body_message
from serving.security.scrub import REDACTED, Scrubber, SecretFilter, scrub, scrubbing_logs
from serving.server import running

AKIA = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc123def456ghi789", "abc123def456ghi789"),
        ("header bearer tok.en-with_chars~+/ab==", "tok.en-with_chars~+/ab=="),
        ("key sk-abcdefghijklmnopqrstuvwx here", "sk-abcdefghijklmnopqrstuvwx"),
        ("key sk-proj-AbC123_dEf456-GhI789jKl0 here", "sk-proj-AbC123_dEf456-GhI789jKl0"),
        ("key sk-ant-api03-abcdefghijklmnop_QRSTUV here", "sk-ant-api03-abcdefghijklmnop_QRSTUV"),
        (f"id {AKIA}.", AKIA),
        ("id ASIAY34FZKBOKMUTVV7A,", "ASIAY34FZKBOKMUTVV7A"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ('{"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI"),
        (f"token {JWT} end", JWT),
        ('{"api_key": "hunter2-not-a-shape", "model": "gpt-4"}', "hunter2-not-a-shape"),
        ("{'api_key': 'hunter2 with spaces'}", "hunter2 with spaces"),
        ('body {\\"api_key\\": \\"hunter2escaped\\"}', "hunter2escaped"),
        ("GET /v1/models?api_key=hunter2query&x=1", "hunter2query"),
        ("GET /v1/models?key=1&openai_api_key=hunter2prefixed", "hunter2prefixed"),
        ("x-api-key: hunter2header", "hunter2header"),
        ("X-Goog-Api-Key: hunter2google", "hunter2google"),
        ('{"authorization": "Basic dXNlcjpodW50ZXIy"}', "dXNlcjpodW50ZXIy"),
        ("Proxy-Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        ("password=hunter2pw client_secret=hunter2cs", "hunter2"),
        ("AIza" + "B" * 35, "AIza" + "B" * 35),
        ("ghp_" + "a1" * 18, "ghp_" + "a1" * 18),
    ],
)
def test_each_pattern_redacts_its_secret(text: str, secret: str) -> None:
    scrubbed = scrub(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed


def test_named_values_keep_their_name_and_quotes() -> None:
    assert scrub('{"api_key": "hunter2", "model": "gpt-4"}') == '{"api_key": "[REDACTED]", "model": "gpt-4"}'
    assert scrub("Authorization: Bearer abc123def456") == "Authorization: [REDACTED]"
    assert scrub("?api_key=abc&model=gpt-4") == "?api_key=[REDACTED]&model=gpt-4"
    assert scrub("send Bearer abc123def456 now") == "send Bearer [REDACTED] now"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gpt-4",
        "gpt-4o-mini-2024-07-18 claude-3-5-sonnet-20241022 meta-llama/Llama-3.1-8B-Instruct",
        "Write a haiku about routers. What is 2 + 2? The task-oriented, risk-adjusted answer is 4.",
        "Explain how bearer tokens and API keys work, and why a password should be long.",
        "deployment 'alpha' (openai/alpha) rejected the request (HTTP 400): max_tokens is too large",
        "sk-short and AKIA-not-an-id and eyJ.not.ajwt",
        AuthenticationError().message,
        ForbiddenParameterError("api_key").message,
        '{"max_tokens": 100, "temperature": 0.2, "model": "gpt-4"}',
    ],
)
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert scrub(text) == text


def test_known_secrets_are_removed_verbatim_longest_first() -> None:
    scrubber = Scrubber.of(["plain-secret-value", "plain-secret-value-longer", "short", None, ""])
    assert scrubber.scrub("a plain-secret-value-longer b plain-secret-value c") == f"a {REDACTED} b {REDACTED} c"
    assert (
        scrubber.scrub("short stays: too short to be matched verbatim")
        == "short stays: too short to be matched verbatim"
    )
    assert Scrubber().scrub("plain-secret-value") == "plain-secret-value"


def test_config_registers_master_key_and_deployment_credentials(tmp_path: Path) -> None:
    config = parse_config(
        {
            "model_list": [
                {"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "deploykey-0001"}},
                {
                    "model_name": "b",
                    "litellm_params": {"model": "bedrock/b", "aws_secret_access_key": "awssecret-0002"},
                },
            ],
            "general_settings": {"master_key": "masterkey-0003"},
        }
    )
    scrubbed = Scrubber.for_config(config).scrub("deploykey-0001 awssecret-0002 masterkey-0003 a b")
    assert scrubbed == f"{REDACTED} {REDACTED} {REDACTED} a b"


def test_upstream_message_is_scrubbed_before_it_is_clipped() -> None:
    key = "sk-" + "k" * 40
    body = orjson.dumps({"error": {"message": "x " * (MAX_MESSAGE_CHARS // 2 - 5) + key}})
    message = body_message(body, 400)
    assert "sk-kkkk" not in message
    assert body_message(b"plain text with Bearer abc123def456ghi", 502) == "plain text with Bearer [REDACTED]"


def test_error_bodies_are_scrubbed_with_the_known_secrets() -> None:
    error = UpstreamError(f"upstream said: key masterkey-0003 and {AKIA}")
    body = orjson.loads(error_response(error, Scrubber.of(["masterkey-0003"]).scrub).body)
    assert body["error"]["message"] == f"upstream said: key {REDACTED} and {REDACTED}"
    assert AKIA not in orjson.loads(error_response(error).body)["error"]["message"]


def _record(
    msg: str, args: object, exc: BaseException | None = None, name: str = "routeiq.gateway"
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_filter_scrubs_message_arguments_and_traceback() -> None:
    secret_filter = SecretFilter(Scrubber.of(["masterkey-0003"]))
    try:
        raise RuntimeError(f"upstream echoed {JWT}")
    except RuntimeError as exc:
        record = _record("call with %s failed for %s", ("masterkey-0003", AKIA), exc)
    assert secret_filter.filter(record)
    text = logging.Formatter().format(record)
    assert "masterkey-0003" not in text and AKIA not in text and JWT not in text
    assert "call with [REDACTED] failed for [REDACTED]" in text
    assert "RuntimeError: upstream echoed [REDACTED]" in text


def test_filter_flattens_a_secret_split_between_format_and_arguments() -> None:
    record = _record("api_key=%s", ("hunter2split",))
    SecretFilter(Scrubber()).filter(record)
    assert record.getMessage() == "api_key=[REDACTED]"


def test_filter_keeps_clean_records_and_uvicorn_access_arguments() -> None:
    clean = _record("loaded %s version %d", ("knn", 3))
    SecretFilter(Scrubber()).filter(clean)
    assert clean.args == ("knn", 3)
    access = _record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/models?api_key=hunter2", "1.1", 200),
        name="uvicorn.access",
    )
    SecretFilter(Scrubber()).filter(access)
    assert isinstance(access.args, tuple) and len(access.args) == 5  # uvicorn's AccessFormatter unpacks them
    assert access.getMessage() == '127.0.0.1:5 - "GET /v1/models?api_key=[REDACTED] HTTP/1.1" 200'


def test_scrubbing_logs_applies_while_installed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log = logging.getLogger("routeiq.gateway")
    with scrubbing_logs(Scrubber.of(["masterkey-0003"])):
        log.info("master key is %s", "masterkey-0003")
        assert any(isinstance(f, SecretFilter) for f in logging.getLogger("uvicorn.error").filters)
        assert any(isinstance(f, SecretFilter) for f in logging.getLogger("LiteLLM Router").filters)
    log.info("after: %s", "masterkey-0003")
    assert caplog.messages == ["master key is [REDACTED]", "after: masterkey-0003"]
    assert not any(isinstance(f, SecretFilter) for f in logging.getLogger("uvicorn.error").filters)


# ---- end to end: canaries through the real gateway -------------------------------------------------------------


def _canary(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _jwt() -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = orjson.dumps({"alg": "HS256", "typ": "JWT"})
    claims = orjson.dumps({"sub": secrets.token_hex(8)})
    return f"{part(header)}.{part(claims)}.{part(secrets.token_bytes(32))}"


MASTER = _canary("gw-master-canary-")
"""No recognisable shape: only the verbatim registration of the configured master key can catch it."""
DEPLOY_SK = _canary("sk-canary-")
DEPLOY_PLAIN = _canary("deploy-plain-canary-")
AWS_ID = "AKIA" + secrets.token_hex(8).upper()
CLIENT_JWT = _jwt()
CANARIES = (MASTER, DEPLOY_SK, DEPLOY_PLAIN, AWS_ID, CLIENT_JWT)


async def _echo(request: Request) -> Response:
    """An upstream that fails with the status its model name ends in, repeating the request's Authorization
    header and whole body in its error message (503: as plain text, not JSON)."""
    body = await request.body()
    status = int(str(orjson.loads(body)["model"]).rpartition("-")[2])
    message = f"refused; you sent Authorization: {request.headers.get('authorization')} and body {body.decode()}"
    if status == 503:
        return PlainTextResponse(message, status)
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status)


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[str]:
    app = Starlette(
        routes=[Route(f"/v1/{path}", _echo, methods=["POST"]) for path in ("chat/completions", "embeddings")]
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", loop="asyncio")
    with running_server(config, "echo-upstream") as url:
        yield f"{url}/v1"


DEPLOYMENTS = {
    "direct-400": ("echo-400", DEPLOY_SK, {}),
    "direct-401": ("echo-401", DEPLOY_PLAIN, {}),
    "direct-500": ("echo-500", DEPLOY_SK, {}),
    "direct-503": ("echo-503", DEPLOY_PLAIN, {}),
    "litellm-400": ("echo-400", DEPLOY_SK, {"organization": "org-test"}),
    "litellm-500": ("echo-500", DEPLOY_PLAIN, {"organization": "org-test"}),
}
"""Both call paths: `organization` is a parameter only LiteLLM applies, so those go through LiteLLM."""


def _gateway_config(upstream: str, traces: Path) -> dict[str, object]:
    return {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {"model": f"openai/{model}", "api_base": upstream, "api_key": key, **extra},
            }
            for name, (model, key, extra) in DEPLOYMENTS.items()
        ],
        "general_settings": {"master_key": MASTER},
        "routeiq_settings": {
            "security": {"upstream_allowlist": ["127.0.0.0/8"]},
            "telemetry": {"directory": str(traces), "capture_prompts": True, "export_interval_seconds": 0.1},
        },
    }


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every gateway, uvicorn and LiteLLM record at INFO, including loggers that do not propagate to root."""
    own = ("uvicorn", "uvicorn.error", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
    caplog.set_level(logging.INFO)
    for name in own:
        caplog.set_level(logging.INFO, logger=name)
        logging.getLogger(name).addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for name in own:
            logging.getLogger(name).removeHandler(caplog.handler)


def _requests(client: httpx.Client) -> list[httpx.Response]:
    prompt = f"Debug this: my gateway key {MASTER}, aws id {AWS_ID}, session {CLIENT_JWT}."
    messages = [{"role": "user", "content": prompt}]
    headers = {"x-api-key": CLIENT_JWT, "x-session-token": AWS_ID}
    answers = [
        client.post("/v1/chat/completions", json={"model": name, "messages": messages}, headers=headers)
        for name in DEPLOYMENTS
    ]
    stream = {"model": "direct-400", "messages": messages, "stream": True}
    answers.append(client.post("/v1/chat/completions", json=stream, headers=headers))
    answers.append(client.post("/v1/embeddings", json={"model": "direct-500", "input": prompt}))
    answers.append(client.post(f"/v1/{AWS_ID}/{MASTER}", json={}))
    return answers


@pytest.mark.usefixtures("mlflow_workspace")
def test_canaries_reach_no_error_body_span_or_log(
    echo_upstream: str, tmp_path: Path, captured_logs: pytest.LogCaptureFixture
) -> None:
    traces = tmp_path / "traces"
    with (
        running(parse_config(_gateway_config(echo_upstream, traces))) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER}"}, timeout=60) as client,
    ):
        answers = _requests(client)
    for answer in answers:
        assert answer.status_code >= 400, answer.text
        assert "error" in answer.json()
        for canary in CANARIES:
            assert canary not in answer.text, (answer.request.url, answer.text)
    echoed = [answer.json()["error"]["message"] for answer in answers[: len(DEPLOYMENTS) + 2]]
    assert all("refused; you sent Authorization" in m and REDACTED in m for m in echoed), echoed

    written = b"".join(path.read_bytes() for path in traces.rglob("*") if path.is_file())
    assert b"refused; you sent Authorization" in written and REDACTED.encode() in written
    logged = captured_logs.text + "\n".join(r.getMessage() for r in captured_logs.records)
    for canary in CANARIES:
        assert canary.encode() not in written, canary
        assert canary not in logged, canary
