"""Prometheus metrics of one gateway: a registry per app (no process globals), named once here.

Counting only; the routes and the poller call these methods, `/metrics` renders the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("routeiq.gateway.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SpanCounts(Collector):
    """Exposes the span exporter's own counters (queued, exported, dropped, failed) at scrape time."""

    NAME = "routeiq_spans"
    LABELS = ("destination", "outcome")

    def __init__(self, read: Callable[[], dict[str, dict[str, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.NAME, "Spans by export destination and outcome", labels=self.LABELS)
        for destination, counts in self._read().items():
            for outcome, count in counts.items():
                family.add_metric([destination, outcome], count)
        yield family


class CircuitStates(Collector):
    """`routeiq_circuit_state{model,state}`: 1 for each model's current breaker state, read at scrape time."""

    NAME = "routeiq_circuit_state"
    LABELS = ("model", "state")

    def __init__(self, read: Callable[[], dict[str, str]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            self.NAME,
            "Circuit breaker state of models that failed lately (closed, open: skipped, half_open: on trial)",
            labels=self.LABELS,
        )
        for model, state in sorted(self._read().items()):
            family.add_metric([model, state], 1.0)
        yield family


IN_FLIGHT_GAUGES = (
    ("requests", "routeiq_in_flight", "API requests (/v1/*) being served now; limits.max_in_flight refuses more"),
    ("keys", "routeiq_in_flight_keys", "API keys with at least one request being served now"),
    (
        "busiest_key",
        "routeiq_in_flight_busiest_key",
        "Requests in flight of the key holding the most; limits.max_in_flight_per_key refuses more",
    ),
)
"""(snapshot field, metric name, help) of the in-flight gauges."""


class InFlightGauges(Collector):
    """The `IN_FLIGHT_GAUGES`, read from admission's counts at scrape time."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        counts = self._read()
        for field, metric, text in IN_FLIGHT_GAUGES:
            yield GaugeMetricFamily(metric, text, value=float(counts[field]))


class GatewayMetrics:
    """Every metric the gateway exposes on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "routeiq_requests",
            "Requests by endpoint, model and HTTP status",
            ["endpoint", "model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "routeiq_request_duration_seconds",
            "Time to the full response",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "routeiq_routing_decisions",
            "Routed requests by chosen model, how it was chosen and arm",
            ["model", "by", "arm"],
            registry=r,
        )
        self.fallbacks = Counter("routeiq_router_fallbacks", "Fallback decisions by reason", ["reason"], registry=r)
        self.reloads = Counter(
            "routeiq_router_polls", "Registry polls by slot and outcome", ["slot", "outcome"], registry=r
        )
        self.router_version = Gauge(
            "routeiq_router_version", "Loaded router version per slot (0: none)", ["slot"], registry=r
        )
        self.cost = Counter(
            "routeiq_cost_usd", "Upstream cost in USD by model and cost source", ["model", "source"], registry=r
        )
        self.exploration_cost = Counter(
            "routeiq_exploration_cost_usd",
            "Upstream cost in USD of requests whose model exploration drew (routing.epsilon), by model; its share "
            "of routeiq_cost_usd_total is the spend that went to exploration",
            ["model"],
            registry=r,
        )
        self.zero_price = Counter(
            "routeiq_zero_priced_requests",
            "Requests to a model priced at 0 (probably a missing price)",
            ["model"],
            registry=r,
        )
        self.feedback = Counter(
            "routeiq_feedback", "Feedback posts by whether the response id was known", ["known"], registry=r
        )
        self.rejections = Counter(
            "routeiq_rejected_requests",
            "Requests refused before an endpoint ran (in-flight, body or header limits), by error code",
            ["code"],
            registry=r,
        )
        self.upstream_failures = Counter(
            "routeiq_upstream_failures",
            "Upstream attempts that failed or were skipped (circuit_open) before an answer or a final error, "
            "by model and reason; each is followed by a retry, a fallback or the client's error",
            ["model", "reason"],
            registry=r,
        )
        self.tokens = Counter(
            "routeiq_tokens",
            "Tokens of answered (or cut-short) model calls by model and direction (input, output)",
            ["model", "direction"],
            registry=r,
        )
        self.errors = Counter(
            "routeiq_error_responses",
            "Error answers of the gateway's routes (refusals included) by route template, status and code",
            ["route", "status", "code"],
            registry=r,
        )
        self._warned_zero: set[str] = set()

    def watch_spans(self, read: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.registry.register(SpanCounts(read))

    def watch_circuits(self, read: Callable[[], dict[str, str]]) -> None:
        """Expose `read()` (model → breaker state, for models that failed lately) at each scrape."""
        self.registry.register(CircuitStates(read))

    def watch_in_flight(self, read: Callable[[], dict[str, int]]) -> None:
        """Expose admission's in-flight counts (`InFlight.snapshot`) at each scrape."""
        self.registry.register(InFlightGauges(read))

    def record_cost(self, model: str, usd: float, source: str, *, explored: bool = False) -> None:
        self.cost.labels(model, source).inc(usd)
        if explored:
            self.exploration_cost.labels(model).inc(usd)
        if source == "zero_price":
            self.zero_price.labels(model).inc()
            if model not in self._warned_zero:
                self._warned_zero.add(model)
                log.warning(
                    "model %s is priced at 0; set its prices in model_list (input/output_cost_per_token)", model
                )

    def record_tokens(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self.tokens.labels(model, "input").inc(input_tokens)
        self.tokens.labels(model, "output").inc(output_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
