"""What a client sends cannot put a secret or a huge value into the span files: the master key, an upstream
API key or an issued key sent as `model`, `user`, metadata, a header or feedback never appears in a span file
or a log line, and a 3 MB value adds a few KB to the files, not megabytes. The files are read once the gateway
has stopped (which flushes them), so no assertion waits on an export interval."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from serving.security.scrub import REDACTED, Scrubber
from serving.server import running
from serving.telemetry import attributes as a
from serving.telemetry.files import read_spans
from serving.telemetry.scrubbing import set_time_limit
from serving.telemetry.settings import TelemetrySettings
from serving.telemetry.tracing import Telemetry
from tests.attack.conftest import AUTH, CHAT, MASTER_KEY, Upstream, chat_body, gateway_config

UPSTREAM_KEY = "upstream-provider-secret-5150"
"""Has no recognisable shape: only the gateway's configured-secrets scrubber can find it."""
LONG_SECRET = "vertex-credentials-" + "q" * 300
"""Long enough that redacting a few of them pulls text from past the SDK's cut into the kept part."""
FEEDBACK = "/v1/feedback"
HUGE = 3 * 1024 * 1024
LONG_PROMPT = 900 * 1024
"""A prompt is forwarded, and the direct path's HTTP client warns about bodies over 1 MB (a ResourceWarning,
an error under pytest): still 14 times what it may add to the span files."""
MAX_GROWTH = 64 * 1024
"""Bytes a request with a 3 MB value may add to the span files."""
MAX_ERROR_BODY = 4096
SHORTEST = 64
"""The smallest `telemetry.max_attribute_chars`: the clip test walks a secret across both of its cuts."""


def span_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted((folder / "traces").glob("*.jsonl")))


def sent_everywhere(client: httpx.Client, secret: str) -> list[httpx.Response]:
    """`secret` as the model, the user, metadata, a header, and a feedback id and source."""
    headers = {"x-routeiq-session": secret, "x-secret": secret}
    return [
        client.post(CHAT, json=chat_body(model=secret)),
        client.post(CHAT, json=chat_body(model=secret, stream=True)),
        client.post(CHAT, json=chat_body(user=secret, metadata={"note": secret}), headers=headers),
        client.post(FEEDBACK, json={"id": secret, "score": 0.5, "source": secret}),
    ]


def test_secrets_sent_as_client_values_never_reach_span_files_or_logs(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = gateway_config(
        upstream.url,
        tmp_path,
        params={"api_key": UPSTREAM_KEY},
        telemetry={"directory": str(tmp_path / "traces"), "capture_prompts": True},
    )
    with (
        caplog.at_level(logging.INFO),
        running(config) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        issued = client.post("/admin/keys", json={}).json()["key"]
        answers = [
            answer for secret in (MASTER_KEY, UPSTREAM_KEY, issued) for answer in sent_everywhere(client, secret)
        ]
    assert all(400 <= answer.status_code < 500 for answer in answers[::4]), [answer.text for answer in answers]
    spans = list(read_spans(tmp_path / "traces"))
    assert any(span.attributes.get(a.REQUEST_MODEL) == "[REDACTED]" for span in spans), "no span recorded the model"
    assert any(span.name == a.FEEDBACK_SPAN_NAME for span in spans)
    written = span_bytes(tmp_path)
    for secret in (MASTER_KEY, UPSTREAM_KEY, issued):
        assert secret.encode() not in written, f"{secret[:6]}… is in a span file"
        assert secret not in caplog.text, f"{secret[:6]}… is in a log line"
        assert all(secret not in answer.text for answer in answers if answer.status_code >= 400), "an error echoed it"


def huge_requests(client: httpx.Client) -> list[tuple[str, httpx.Response]]:
    """One 3 MB value per field that is (or is checked before becoming) a span attribute."""
    value, prompt = "x" * HUGE, "y" * LONG_PROMPT
    return [
        ("model", client.post(CHAT, json=chat_body(model=value))),
        ("prompt", client.post(CHAT, json={"model": "alpha", "messages": [{"role": "user", "content": prompt}]})),
        ("feedback id", client.post(FEEDBACK, json={"id": value, "score": 0.5})),
        ("feedback source", client.post(FEEDBACK, json={"id": "chatcmpl-1", "score": 0.5, "source": value})),
    ]


def test_a_3_mb_value_adds_little_to_the_span_files_and_the_error_bodies(upstream: Upstream, tmp_path: Path) -> None:
    config = gateway_config(
        upstream.url, tmp_path, telemetry={"directory": str(tmp_path / "traces"), "capture_prompts": True}
    )
    with running(config) as url, httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        answers = huge_requests(client)
    for field, answer in answers:
        if field != "prompt":
            assert answer.status_code == 400, (field, answer.text[:500])
            assert len(answer.content) < MAX_ERROR_BODY, (field, len(answer.content))
    written = span_bytes(tmp_path)
    assert len(written) < len(answers) * MAX_GROWTH, f"{len(written)} bytes of spans for {len(answers)} requests"
    spans = list(read_spans(tmp_path / "traces"))
    prompts = [span.attributes[a.PROMPT_TEXT] for span in spans if a.PROMPT_TEXT in span.attributes]
    assert prompts and all(isinstance(p, str) and "clipped" in p for p in prompts), "the prompt was not clipped"


def test_a_secret_cut_by_the_clip_leaves_no_fragment(tmp_path: Path) -> None:
    """The SDK truncates a value when it is set and the cleaner clips it again: neither cut may leave a piece of a
    configured secret (which nothing recognises once cut) in the file, wherever the secret falls, even after
    secrets before it were redacted (which shortens the text and pulls the cut piece forward)."""
    settings = TelemetrySettings(directory=tmp_path, max_attribute_chars=SHORTEST)
    telemetry = Telemetry(settings, scrubber=Scrubber.of([UPSTREAM_KEY, LONG_SECRET]))
    telemetry.start()
    bound = set_time_limit(SHORTEST)
    tail = "y" * 2 * bound
    before = LONG_SECRET * (bound // len(LONG_SECRET))
    values = [
        p + "x" * offset + s + tail
        for p in ("", before)
        for s in (UPSTREAM_KEY, LONG_SECRET)
        for offset in range(bound)
    ]
    for value in values:
        telemetry.tracer.start_span("clipped", attributes={"value": value, "values": [value, "z"]}).end()
    telemetry.shutdown()
    spans = list(read_spans(tmp_path))
    assert len(spans) == len(values)
    for span in spans:
        value, listed = span.attributes["value"], span.attributes["values"]
        assert isinstance(value, str) and isinstance(listed, list | tuple) and listed[0] == value
        assert len(value) < 2 * SHORTEST
        left = re.sub(r"…\[clipped from [^\]]*\]$", "", value).replace(REDACTED, "")
        cut_marker = next((REDACTED[:n] for n in range(len(REDACTED), 0, -1) if left.endswith(REDACTED[:n])), "")
        assert set(left.removesuffix(cut_marker)) <= {"x", "y"}, value
