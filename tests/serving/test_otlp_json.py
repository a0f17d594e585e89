"""The fast OTLP-JSON encoder against the official one: same dict, same bytes, on spans the gateway really builds."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from serving.exceptions import GatewayError
from serving.exchange import Exchange
from serving.metrics import GatewayMetrics
from serving.providers.pricing import Cost
from serving.providers.result import StreamSummary
from serving.request_span import decision_attributes, request_attributes
from serving.responses import RecentResponses
from serving.routing.loader import ActiveRouter
from serving.routing.policy import BY_EXPLORATION, BY_FALLBACK, BY_ROUTER, TIMEOUT, Decision, explicit
from serving.security.scrub import Scrubber
from serving.state import GatewayState
from serving.telemetry import attributes as a
from serving.telemetry import otlp_json
from serving.telemetry.file_exporter import encode_line
from serving.telemetry.otlp_json import encode_request

MODELS = ("gpt-4o", "gpt-4o-mini", "llama-3-8b-instruct", "claude-3-haiku", "mistral-large")
PROMPTS = (
    "Summarise the attached quarterly report in three bullet points.",
    "Écris un haïku sur la mer — en français, s'il te plaît.",
    "用一句话解释量子纠缠。",
    "",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)  # why is this slow? 🐢",
)
BENCH_SPANS = 512


@pytest.fixture
def fast_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail on any fallback, so equality is the fast path's own and not the official encoder's."""

    def refuse(*args: object) -> dict[str, Any]:
        raise AssertionError(f"fell back to the official encoder for {args}")

    monkeypatch.setattr(otlp_json, "_official_span", refuse)
    monkeypatch.setattr(otlp_json, "_official_envelope", refuse)


@pytest.fixture
def recorded() -> Iterator[tuple[Callable[..., Tracer], InMemorySpanExporter]]:
    """A tracer factory over providers that all export to one in-memory exporter, in end order."""
    exporter = InMemorySpanExporter()
    providers: list[TracerProvider] = []

    def tracer(
        resource: Resource | None = None, name: str = "routeiq.gateway", limits: SpanLimits | None = None, **scope: Any
    ) -> Tracer:
        provider = TracerProvider(
            resource=resource or Resource({"service.name": "routeiq-gateway"}),
            span_limits=limits,
            shutdown_on_exit=False,
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return cast(Tracer, provider.get_tracer(name, **scope))

    yield tracer, exporter
    for provider in providers:
        provider.shutdown()


def assert_same_as_official(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    official = encode_spans(spans).to_dict()
    fast = encode_request(spans)
    assert fast == official
    assert orjson.dumps(fast) == orjson.dumps(official)
    return fast


def _state(tracer: Tracer) -> GatewayState:
    """Just what `Exchange` touches: a tracer, real metrics and the response-id memory."""
    state = SimpleNamespace(
        telemetry=SimpleNamespace(tracer=tracer),
        metrics=GatewayMetrics(),
        responses=RecentResponses(capacity=10_000),
        scrubber=Scrubber(),
    )
    return cast(GatewayState, state)


def _decision(i: int, rng: random.Random) -> Decision:
    """The four ways the gateway decides, in turn; routed ones carry every candidate's predictions."""
    if i % 4 == 3:
        return explicit(MODELS[i % len(MODELS)])
    if i % 4 == 2:
        return Decision(MODELS[0], BY_FALLBACK, 1.0, 0.5, arm="champion", fallback_reason=TIMEOUT)
    candidates = MODELS[: 2 + i % 4]
    router = ActiveRouter(
        model=cast(Any, None),
        version=7 if i % 2 else None,
        family="matrix_factorization",
        reference="routeiq-router",
        candidates=candidates,
        feature_spec="v3",
        loaded_at=0.0,
    )
    return Decision(
        model=rng.choice(candidates),
        by=BY_ROUTER if i % 4 == 0 else BY_EXPLORATION,
        propensity=rng.random(),
        cost_weight=rng.choice((0.0, 0.5, 12.0)),
        arm=rng.choice(("champion", "challenger")),
        router=router,
        candidates=candidates,
        quality=tuple(rng.random() for _ in candidates),
        cost=tuple(rng.random() / 1000 for _ in candidates),
    )


def _summary(i: int, rng: random.Random, complete: bool = True) -> StreamSummary:
    return StreamSummary(
        response_id=f"chatcmpl-{i:08d}" if i % 9 else "",
        response_model=MODELS[i % len(MODELS)] + "-2024-08-06",
        input_tokens=rng.randrange(1, 4000),
        output_tokens=rng.randrange(0, 2**40),
        finish_reasons=("stop",) if i % 6 else ("length", "stop"),
        cost=Cost(usd=rng.random() / 100, source=("price_map", "config", "unpriced")[i % 3]),
        provider="openai",
        path="direct",
        complete=complete,
        usage_estimated=not complete,
    )


def gateway_requests(tracer: Tracer, count: int, seed: int = 0) -> GatewayState:
    """`count` requests through the gateway's own `Exchange`: successes, failures, and broken streams."""
    rng = random.Random(seed)
    state = _state(tracer)
    for i in range(count):
        stream = i % 3 == 0
        attributes = request_attributes("chat", "auto" if i % 4 != 3 else MODELS[i % len(MODELS)], stream)
        exchange = Exchange(state, "/v1/chat/completions", a.CHAT_SPAN_NAME, attributes)
        decision = _decision(i, rng)
        exchange.decided(decision, decision_attributes(decision, PROMPTS[i % len(PROMPTS)], i % 5 == 0))
        if i % 11 == 10:
            exchange.fail(GatewayError("upstream returned 503 — «service unavailable»"))
        elif i % 13 == 12:
            exchange.fail(TimeoutError("stream stalled"), partial=_summary(i, rng, complete=False))
        else:
            exchange.succeed(_summary(i, rng), "openai", rng.random() / 100, "price_map")
    return state


def feedback(tracer: Tracer, state: GatewayState, response_id: str, score: float) -> None:
    """The span `POST /v1/feedback` records: linked to the request's span when its id is remembered."""
    context = state.responses.get(response_id)
    tracer.start_span(
        a.FEEDBACK_SPAN_NAME,
        links=[Link(context)] if context is not None else None,
        attributes={
            a.FEEDBACK_RESPONSE_ID: response_id,
            a.FEEDBACK_SCORE: score,
            a.FEEDBACK_SOURCE: "human",
            a.FEEDBACK_KNOWN: context is not None,
        },
    ).end()


def test_gateway_request_and_feedback_spans_encode_as_the_official_encoder(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter], fast_only: None
) -> None:
    make_tracer, exporter = recorded
    tracer = make_tracer()
    state = gateway_requests(tracer, 60)
    feedback(tracer, state, "chatcmpl-00000001", 0.75)
    feedback(tracer, state, "chatcmpl-unknown", 0.0)
    spans = exporter.get_finished_spans()

    (resource_spans,) = assert_same_as_official(spans)["resourceSpans"]
    encoded = resource_spans["scopeSpans"][0]["spans"]
    keys = {kv["key"] for span in encoded for kv in span["attributes"]}
    assert {a.CANDIDATES, a.PREDICTED_QUALITY, a.PREDICTED_COST, a.PROMPT_TEXT, a.ERROR_TYPE} <= keys
    assert {span["status"].get("code") for span in encoded} == {None, StatusCode.ERROR.value}
    assert [len(span.get("links", ())) for span in encoded[-2:]] == [1, 0]


def test_values_of_every_attribute_type_and_edge_case(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter], fast_only: None
) -> None:
    make_tracer, exporter = recorded
    values: dict[str, Any] = {
        "str": 'ünïcødé ✓ 🚀 \u2028 \x00 "quoted" \\',
        "empty": "",
        "true": True,
        "false": False,
        "zero": 0,
        "int64.max": 2**63 - 1,
        "int64.min": -(2**63),
        "beyond.int64": 2**80,
        "double": 0.1 + 0.2,
        "double.zero": -0.0,
        "double.tiny": 5e-324,
        "nan": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "strings": ["a", "", "é"],
        "doubles": [0.5, math.nan, math.inf, -math.inf],
        "ints": [1, -(2**63), 2**70],
        "bools": [True, False],
        "empty.list": [],
        "with.none": ["a", None],
        "ключ": "значение",
    }
    make_tracer().start_span("", attributes=values).end()
    make_tracer().start_span("名前 ✓").end()
    encoded = assert_same_as_official(exporter.get_finished_spans())
    span = encoded["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert "name" not in span and len(span["attributes"]) == len(values)


def test_every_kind_status_event_link_remote_parent_and_trace_state(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter], fast_only: None
) -> None:
    make_tracer, exporter = recorded
    tracer = make_tracer()
    remote = SpanContext(
        trace_id=2**128 - 1,
        span_id=1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "v1"), ("rojo", "00f067aa0ba902b7")]),
    )
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    for kind in SpanKind:
        with tracer.start_as_current_span(f"kind-{kind.name}", context=parent, kind=kind) as span:
            span.add_event("no attributes")
            span.add_event("with attributes", {"n": 3, "tags": ["x", "y"]}, timestamp=1_700_000_000_123_456_789)
            span.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("child") as span:
        span.set_status(StatusCode.ERROR, "")
        try:
            raise ValueError("bad value ✗")
        except ValueError as error:
            span.record_exception(error)
    links = [Link(remote, {"link.kind": "follows", "weight": 0.5}), Link(exporter.get_finished_spans()[0].context)]
    tracer.start_span("linked", links=links).end()
    tracer.start_span("error", kind=SpanKind.CLIENT).set_status(Status(StatusCode.ERROR, "upstream said no"))

    encoded = assert_same_as_official(exporter.get_finished_spans())
    spans = encoded["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert spans[0]["traceState"] == "vendor=v1,rojo=00f067aa0ba902b7" and spans[0]["flags"] == 0x300
    assert spans[-1]["links"][0]["flags"] == 0x300 and spans[-1]["links"][1]["flags"] == 0x100


def test_dropped_counts(recorded: tuple[Callable[..., Tracer], InMemorySpanExporter], fast_only: None) -> None:
    make_tracer, exporter = recorded
    limits = SpanLimits(max_span_attributes=2, max_events=1, max_links=1, max_event_attributes=1, max_link_attributes=1)
    other = SpanContext(trace_id=5, span_id=6, is_remote=False)
    span = make_tracer(limits=limits).start_span(
        "limited",
        attributes={"a": 1, "b": 2, "c": 3},
        links=[Link(other, {"x": 1, "y": 2}), Link(other)],
    )
    span.add_event("one", {"x": 1, "y": 2})
    span.add_event("two")
    span.end()
    encoded = assert_same_as_official(exporter.get_finished_spans())
    (limited,) = encoded["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert (limited["droppedAttributesCount"], limited["droppedEventsCount"], limited["droppedLinksCount"]) == (1, 1, 1)


def test_resources_and_scopes_are_grouped_by_equality_in_first_seen_order(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter], fast_only: None
) -> None:
    make_tracer, exporter = recorded
    gateway = Resource({"service.name": "routeiq-gateway", "replica": 1})
    same_gateway = Resource({"service.name": "routeiq-gateway", "replica": 1})  # equal, not identical
    replay = Resource({"service.name": "routeiq-replay", "ratios": [0.1, 0.9]}, schema_url="https://x/schemas/1.2")
    empty = Resource({})
    tracers = [
        make_tracer(gateway),
        make_tracer(same_gateway, "routeiq.feedback", instrumenting_library_version="1.0"),
        make_tracer(replay, "routeiq.replay", schema_url="https://x/scope", attributes={"replay.seed": 7}),
        make_tracer(empty, ""),
        make_tracer(same_gateway, "routeiq.feedback", instrumenting_library_version="1.0"),  # equal to [1]
        make_tracer(replay, "routeiq.replay", instrumenting_library_version="2.0"),
        make_tracer(gateway, "routeiq.feedback", instrumenting_library_version="1.0", attributes={"k": "v"}),
    ]
    for i in range(30):
        tracers[i * 5 % len(tracers)].start_span(f"span-{i}").end()

    encoded = assert_same_as_official(exporter.get_finished_spans())
    assert len(encoded["resourceSpans"]) == 3
    assert [len(r["scopeSpans"]) for r in encoded["resourceSpans"]] == [3, 2, 1]


def test_values_it_does_not_mirror_are_encoded_by_the_official_encoder(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    fallbacks: list[str] = []
    official_span = otlp_json._official_span

    def counted(span: ReadableSpan) -> dict[str, Any]:
        fallbacks.append(span.name)
        return official_span(span)

    monkeypatch.setattr(otlp_json, "_official_span", counted)
    make_tracer, exporter = recorded
    tracer = make_tracer(Resource({"blob": b"\x00\xff", "service.name": "s"}), attributes={"map": {"k": [1, "x"]}})
    tracer.start_span("bytes", attributes={"payload": b"\x01\x02"}).end()
    tracer.start_span("mapping", attributes={"nested": {"a": {"b": 1.5}}}).end()
    tracer.start_span("plain", attributes={"ok": 1}).end()
    spans = list(exporter.get_finished_spans())
    # Built by hand, past the SDK's attribute cleaning: the official encoder logs and skips the set.
    odd = {"": 1, "set": {1, 2}, "n": [[1], (2.5,)]}
    spans.append(ReadableSpan(name="no context", resource=spans[0].resource, attributes=odd))
    spans.append(ReadableSpan(name="int", context=spans[0].context, resource=spans[0].resource, attributes={"k": 1}))

    (resource_spans,) = assert_same_as_official(spans)["resourceSpans"]
    assert fallbacks == ["bytes", "mapping", "no context"]
    assert {"key": "blob", "value": {"bytesValue": "AP8="}} in resource_spans["resource"]["attributes"]
    assert resource_spans["scopeSpans"][0]["scope"]["attributes"][0]["value"]["kvlistValue"]


def test_encode_line_writes_the_official_bytes_and_nothing_for_no_spans(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter],
) -> None:
    make_tracer, exporter = recorded
    gateway_requests(make_tracer(), 8)
    spans = exporter.get_finished_spans()
    assert encode_line(spans) == orjson.dumps(encode_spans(spans).to_dict()) + b"\n"
    assert encode_line([]) is None
    assert encode_request([]) == encode_spans([]).to_dict() == {}


def _microseconds_per_span(encode: Callable[[Sequence[ReadableSpan]], bytes], spans: Sequence[ReadableSpan]) -> float:
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        encode(spans)
        best = min(best, time.perf_counter() - started)
    return best / len(spans) * 1e6


def test_speed_on_a_batch_of_realistic_request_spans(
    recorded: tuple[Callable[..., Tracer], InMemorySpanExporter],
) -> None:
    """Printed, not asserted: timings on shared CPUs are too noisy to gate on."""
    make_tracer, exporter = recorded
    gateway_requests(make_tracer(), BENCH_SPANS, seed=1)
    spans = exporter.get_finished_spans()
    assert len(spans) == BENCH_SPANS

    def official(batch: Sequence[ReadableSpan]) -> bytes:
        return orjson.dumps(encode_spans(batch).to_dict())

    def fast(batch: Sequence[ReadableSpan]) -> bytes:
        return orjson.dumps(encode_request(batch))

    assert fast(spans) == official(spans)
    before, after = _microseconds_per_span(official, spans), _microseconds_per_span(fast, spans)
    print(f"\nOTLP-JSON encode+dumps of {BENCH_SPANS} request spans, µs/span: official {before:.1f}, fast {after:.1f}")
