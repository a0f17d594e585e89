"""Realistic gateway span files at any size: recorded RouterBench outcomes replayed as request + feedback spans.

Writes the OTLP-JSON lines the gateway's exporter writes, from byte templates filled per span (not through the
OTel SDK), so a million spans take seconds; tests check the lines against the real exporter's. Writes files only.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson
import pyarrow as pa
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from features import schema
from features.prompt import estimate_tokens
from pipelines.outcomes import import_source, read_outcomes
from pipelines.traffic import FEEDBACK_SOURCE
from serving.access.audit import MASTER
from serving.access.guard import Principal
from serving.access.keys import Role
from serving.providers.pricing import PROVIDER as RECORDED_COST
from serving.replay.latency import MS_PER_SECOND, draw_delay
from serving.replay.settings import Latency, LatencyModel
from serving.request_span import decision_attributes, request_attributes, usage_attributes
from serving.routes.chat_completions import OPERATION
from serving.routes.feedback import feedback_attributes
from serving.routing.policy import Decision
from serving.schemas import FeedbackRequest
from serving.settings import RoutingSettings
from serving.telemetry import attributes as a
from serving.telemetry.file_exporter import span_file_name
from serving.telemetry.settings import TelemetrySettings
from serving.telemetry.tracing import TRACER_NAME

"""Written by `routeiq data import routerbench …`; without it the RouterBench CSVs are imported from a data dir."""
UPSTREAM_PROVIDER: Final = "openai"
"""The replay deployments are `openai/<model>` entries, as in the demo and the tests."""
LOGGING_ROUTER: Final = ("1", "knn")
"""Version label and family of the router the logged requests name; it explores with ε = 1 (uniform choice)."""
CALLER: Final = Principal(MASTER, Role.ADMIN)
"""Who sends the requests and rates them: the master key, as the demo's traffic driver does."""
LATENCY: Final = LatencyModel(default=Latency(ttft_ms=300.0, per_token_ms=20.0), jitter=0.2)
"""Modelled provider latency (RouterBench records none), drawn once per recorded answer."""
OTLP_SPAN_FLAGS: Final = 256
"""What the SDK writes as `flags` for a local, sampled span."""
OTLP_KIND_INTERNAL, OTLP_KIND_SERVER = 1, 2
REQUEST_GAP_NS, FEEDBACK_DELAY_NS, FEEDBACK_SPAN_NS = 1_000_000, 2_000_000, 50_000
"""Simulated time: a request per millisecond; feedback 2 ms after the answer, lasting 50 µs."""
ID_HEX: Final = 128
"""Hex digits of random ids per request: its trace, span and response ids, its feedback's trace and span ids."""
BLOCK: Final = 4096
"""Requests whose ids are drawn at once."""
REQUEST_HOLES: Final = ("trace", "span", "start", "end", "response")
FEEDBACK_HOLES: Final = (*REQUEST_HOLES, "link_trace", "link_span")
_HOLE: Final = "\u241f"
_HOLES: Final = re.compile(_HOLE.encode() + rb"(\w+)" + _HOLE.encode())


def hole(name: str) -> str:
    """A placeholder that JSON encoding leaves as it is and that no prompt contains."""
    return f"{_HOLE}{name}{_HOLE}"


@dataclass(frozen=True)
class Template:
    """Encoded JSON with holes: `pieces` alternate literal bytes and hole names; `fill` puts values in."""

    pieces: tuple[bytes, ...]

    @classmethod
    def of(cls, value: Any, holes: Sequence[str]) -> Template:
        pieces = tuple(_HOLES.split(orjson.dumps(value)))
        if [p.decode() for p in pieces[1::2]] != list(holes):
            raise ValueError(f"template holes {pieces[1::2]!r} are not the expected {list(holes)}")
        return cls(pieces)

    def fill(self, values: Sequence[bytes]) -> bytes:
        parts = list(self.pieces)
        parts[1::2] = values
        return b"".join(parts)


@dataclass(frozen=True)
class Answer:
    """One recorded (prompt, model) answer as the gateway logs it: its request span and, when the recorded
    quality is known, the feedback span the traffic driver posts on it."""

    request: Template
    feedback: Template | None
    latency_ns: int


@dataclass(frozen=True)
class SpanFiles:
    """What `Replay.write` wrote; spans = request spans + feedback spans."""

    directory: Path
    spans: int
    requests: int
    feedback: int
    files: int
    bytes: int
    seconds: float

    @property
    def spans_per_second(self) -> float:
        return self.spans / self.seconds if self.seconds else 0.0


def load_outcomes(outcomes: Path | None, data_dir: Path | None) -> pa.Table:
    """The RouterBench outcome table: the parquet from `routeiq data import` if there is one, else imported."""
    if outcomes is not None and outcomes.is_file():
        return read_outcomes(outcomes)
    if data_dir is not None and (data_dir / "routerbench").is_dir():
        return import_source("routerbench", data_dir / "routerbench")[0]
    raise FileNotFoundError(
        f"no outcome data: neither {outcomes} nor {data_dir}/routerbench/ exists; pass --data-dir <the routing-data "
        "directory holding routerbench/> or --outcomes <parquet from 'routeiq data import routerbench'>"
    )


def otlp_value(value: Any) -> dict[str, Any]:
    """A Python attribute value as an OTLP-JSON `AnyValue`, as the SDK's JSON encoder writes it."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [otlp_value(v) for v in value]}}
    raise TypeError(f"no OTLP encoding for attribute value {value!r}")


def otlp_attributes(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": otlp_value(value)} for key, value in attributes.items()]


@dataclass(frozen=True)
class _Usage:
    """What the replay provider reports for an answer (the `serving.request_span.Usage` protocol)."""

    response_id: str
    response_model: str
    input_tokens: int
    output_tokens: int
    finish_reasons: tuple[str, ...] = ("stop",)


def _usage(row: dict[str, Any]) -> _Usage:
    """Token counts as the replay provider reports them: recorded, else estimated from the texts."""
    recorded_in, recorded_out = row[schema.INPUT_TOKENS], row[schema.OUTPUT_TOKENS]
    return _Usage(
        response_id=hole("response"),
        response_model=row[schema.MODEL],
        input_tokens=recorded_in if recorded_in is not None else estimate_tokens(row[schema.PROMPT]),
        output_tokens=recorded_out if recorded_out is not None else estimate_tokens(row[schema.RESPONSE]),
    )


def request_span_attributes(row: dict[str, Any], logging: Decision, latency_ms: float) -> dict[str, Any]:
    """The chat span's attributes for one answer, built by the gateway's own attribute functions."""
    found = request_attributes(OPERATION, RoutingSettings().virtual_model, stream=False) | {a.KEY_ID: CALLER.actor}
    found |= decision_attributes(dataclasses.replace(logging, model=row[schema.MODEL]), row[schema.PROMPT], True)
    # `decision_attributes` reads these two off the loaded router, which a generator does not have.
    found |= {a.ROUTER_VERSION: LOGGING_ROUTER[0], a.ROUTER_FAMILY: LOGGING_ROUTER[1]}
    found |= usage_attributes(_usage(row), UPSTREAM_PROVIDER, row[schema.COST_USD] or 0.0, RECORDED_COST)
    return found | {a.HTTP_STATUS: 200, a.LATENCY_MS: latency_ms}


def feedback_span_attributes(score: float) -> dict[str, Any]:
    """What `POST /v1/feedback` records for a response the gateway still remembers, rated by its caller."""
    rated = FeedbackRequest(id=hole("response"), score=float(score), source=FEEDBACK_SOURCE)
    return feedback_attributes(rated, True, CALLER)


def _span(name: str, kind: int, attributes: dict[str, Any], link: bool) -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": hole("trace"), "spanId": hole("span"), "flags": OTLP_SPAN_FLAGS}
    span |= {"name": name, "kind": kind, "startTimeUnixNano": hole("start"), "endTimeUnixNano": hole("end")}
    span["attributes"] = otlp_attributes(attributes)
    if link:
        span["links"] = [{"traceId": hole("link_trace"), "spanId": hole("link_span"), "flags": OTLP_SPAN_FLAGS}]
    return span | {"status": {}}


def logging_decision(table: pa.Table, cost_weight: float) -> Decision:
    """A router exploring with ε = 1: every model equally likely (propensity 1/K); it predicts each model's
    mean recorded quality and cost."""
    models = sorted(set(table[schema.MODEL].to_pylist()))
    means = table.group_by(schema.MODEL, use_threads=False).aggregate(
        [(schema.QUALITY, "mean"), (schema.COST_USD, "mean")]
    )
    by_model = {r[schema.MODEL]: r for r in means.to_pylist()}
    return Decision(
        model=models[0],
        by=a.DECISION_EXPLORE,
        propensity=1.0 / len(models),
        cost_weight=cost_weight,
        candidates=tuple(models),
        quality=tuple(float(by_model[m][f"{schema.QUALITY}_mean"] or 0.0) for m in models),
        cost=tuple(float(by_model[m][f"{schema.COST_USD}_mean"] or 0.0) for m in models),
    )


def _answer(row: dict[str, Any], logging: Decision, rng: random.Random) -> Answer:
    latency_ms = MS_PER_SECOND * draw_delay(LATENCY, row[schema.MODEL], _usage(row).output_tokens, rng).total
    request = _span(a.CHAT_SPAN_NAME, OTLP_KIND_SERVER, request_span_attributes(row, logging, latency_ms), False)
    feedback = None
    if row[schema.QUALITY] is not None:
        scored = _span(a.FEEDBACK_SPAN_NAME, OTLP_KIND_INTERNAL, feedback_span_attributes(row[schema.QUALITY]), True)
        feedback = Template.of(scored, FEEDBACK_HOLES)
    return Answer(Template.of(request, REQUEST_HOLES), feedback, int(latency_ms * 1e6))


def envelope(service_name: str) -> Template:
    """One `ExportTraceServiceRequest` line around a batch of spans, with this process's resource."""
    resource = {"attributes": otlp_attributes(dict(Resource.create({SERVICE_NAME: service_name}).attributes))}
    scope = {"scope": {"name": TRACER_NAME}, "spans": [hole("spans")]}
    first, name, last = Template.of(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]}, ["spans"]
    ).pieces
    # The hole stood for a JSON string; the spans go in without its quotes.
    return Template((first[:-1], name, last[1:] + b"\n"))


@dataclass(frozen=True)
class Replay:
    """Templates of every recorded answer, per prompt (prompt-id order) and model (sorted); built once, then
    `write` any number of spans from them."""

    prompts: tuple[tuple[Answer, ...], ...]
    seed: int

    @classmethod
    def of(cls, table: pa.Table, cost_weight: float, seed: int = 0) -> Replay:
        logging, rng = logging_decision(table, cost_weight), random.Random(seed)
        by_prompt: dict[str, dict[str, Answer]] = {}
        for row in table.to_pylist():
            by_prompt.setdefault(row[schema.PROMPT_ID], {})[row[schema.MODEL]] = _answer(row, logging, rng)
        return cls(tuple(tuple(m[k] for k in sorted(m)) for _, m in sorted(by_prompt.items())), seed)

    def spans(self, count: int) -> Iterator[tuple[bool, bytes]]:
        """Encoded spans, each flagged True for a request: prompts in turn, each answered by a uniformly
        drawn model, then (when its quality was recorded) the feedback on it. Endless: take what you need."""
        rng = random.Random(self.seed)
        started = time.time_ns() - count * REQUEST_GAP_NS
        for block in itertools.count(0, BLOCK):
            ids = rng.randbytes(BLOCK * ID_HEX // 2).hex().encode()
            for offset in range(BLOCK):
                models = self.prompts[(block + offset) % len(self.prompts)]
                answer = models[rng.randrange(len(models))]
                slot = ids[offset * ID_HEX : (offset + 1) * ID_HEX]
                trace, span, response = slot[:32], slot[32:48], b"chatcmpl-" + slot[48:80]
                start = started + (block + offset) * REQUEST_GAP_NS
                end = start + answer.latency_ns
                yield True, answer.request.fill((trace, span, b"%d" % start, b"%d" % end, response))
                if answer.feedback is not None:
                    at = end + FEEDBACK_DELAY_NS
                    times = (b"%d" % at, b"%d" % (at + FEEDBACK_SPAN_NS))
                    yield False, answer.feedback.fill((slot[80:112], slot[112:128], *times, response, trace, span))

    def write(self, directory: Path, count: int, telemetry: TelemetrySettings | None = None) -> SpanFiles:
        """`count` spans into `directory` as the gateway's file exporter writes them: `max_export_batch_size`
        spans per line, a new `spans-*.jsonl` file before one would pass `max_file_bytes`."""
        if count <= 0:
            raise ValueError(f"span count must be positive, got {count}")
        settings = telemetry or TelemetrySettings()
        started = time.perf_counter()
        line = envelope(settings.service_name)
        requests = 0
        with _RotatingWriter(directory, settings.max_file_bytes) as writer:
            spans = itertools.islice(self.spans(count), count)
            while batch := list(itertools.islice(spans, settings.max_export_batch_size)):
                requests += sum(is_request for is_request, _ in batch)
                writer.write(line.fill([b",".join(span for _, span in batch)]))
        seconds = time.perf_counter() - started
        return SpanFiles(directory, count, requests, count - requests, writer.files, writer.total, seconds)


class _RotatingWriter:
    """Appends lines to `spans-*.jsonl` files, starting a new one before a line would take it past the limit."""

    def __init__(self, directory: Path, max_file_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory, self._limit = directory, max_file_bytes
        self._started, self._pid = datetime.now(UTC), os.getpid()
        self._file: BinaryIO | None = None
        self._size = self.files = self.total = 0

    def __enter__(self) -> _RotatingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def write(self, line: bytes) -> None:
        if self._file is None or (self._size > 0 and self._size + len(line) > self._limit):
            if self._file is not None:
                self._file.close()
            self.files += 1
            self._file = (self._directory / span_file_name(self._started, self._pid, self.files)).open("xb")
            self._size = 0
        self._file.write(line)
        self._size += len(line)
        self.total += len(line)
