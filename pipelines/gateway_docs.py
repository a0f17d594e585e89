"""`routeiq report gateway`: the settings reference, the span attribute table and the metrics table of
docs/gateway.md, generated from the settings models, `serving.telemetry.attributes` and `GatewayMetrics` so they
never drift from the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pipelines.doc_sections import markers, write_section

SETTINGS_BEGIN, SETTINGS_END = markers("gateway-settings", "routeiq report gateway")
ATTRIBUTES_BEGIN, ATTRIBUTES_END = markers("span-attributes", "routeiq report gateway")
METRICS_BEGIN, METRICS_END = markers("metrics", "routeiq report gateway")


def _default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, Path):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def settings_table(model: type[BaseModel], prefix: str) -> str:
    lines = [f"`{prefix}`", "", "| key | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        meaning = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {_default(field.default)} | {meaning} |")
    return "\n".join(lines) + "\n"


def render_settings() -> str:
    from serving.access.settings import AccessSettings, AuditSettings, QuotaSettings, TeamLimits
    from serving.policy.rules import PolicySettings, Rule, TimeWindow
    from serving.resilience.settings import BreakerSettings, FailoverSettings, LimitSettings
    from serving.security.settings import SecuritySettings
    from serving.settings import FeedbackSettings, GatewaySettings, RoutingSettings, SigningSettings
    from serving.telemetry.settings import TelemetrySettings

    tables = [
        settings_table(GatewaySettings, "routeiq_settings"),
        settings_table(RoutingSettings, "routeiq_settings.routing"),
        settings_table(TelemetrySettings, "routeiq_settings.telemetry"),
        settings_table(SigningSettings, "routeiq_settings.routing.signing"),
        settings_table(FeedbackSettings, "routeiq_settings.feedback"),
        settings_table(AccessSettings, "routeiq_settings.access"),
        settings_table(AuditSettings, "routeiq_settings.access.audit"),
        settings_table(QuotaSettings, "routeiq_settings.access.quotas"),
        settings_table(TeamLimits, "routeiq_settings.access.quotas.teams.<team>"),
        settings_table(PolicySettings, "routeiq_settings.policy"),
        settings_table(Rule, "routeiq_settings.policy.rules[*]"),
        settings_table(TimeWindow, "routeiq_settings.policy.rules[*].time"),
        settings_table(SecuritySettings, "routeiq_settings.security"),
        settings_table(LimitSettings, "routeiq_settings.limits"),
        settings_table(FailoverSettings, "routeiq_settings.failover"),
        settings_table(BreakerSettings, "routeiq_settings.failover.breaker"),
    ]
    return "\n".join(tables)


def render_attributes() -> str:
    from serving.telemetry import attributes

    lines = ["| constant | attribute or span name |", "|---|---|"]
    for name in dir(attributes):
        value = getattr(attributes, name)
        if name.isupper() and isinstance(value, str):
            lines.append(f"| `{name}` | `{value}` |")
    return "\n".join(lines) + "\n"


def render_metrics() -> str:
    """Every family a gateway's `/metrics` exposes, from a fresh `GatewayMetrics` watching empty readers."""
    from serving.metrics import CircuitStates, GatewayMetrics, SpanCounts

    metrics = GatewayMetrics()
    metrics.watch_spans(dict)
    metrics.watch_circuits(dict)
    metrics.watch_in_flight(lambda: {"requests": 0, "keys": 0, "busiest_key": 0})
    labels = {
        wrapper._name: ",".join(wrapper._labelnames)  # prometheus_client keeps label names only there
        for wrapper in vars(metrics).values()
        if hasattr(wrapper, "_labelnames")
    }
    labels |= {collector.NAME: ",".join(collector.LABELS) for collector in (SpanCounts, CircuitStates)}
    lines = ["| metric | type | meaning |", "|---|---|---|"]
    for family in metrics.registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        names = labels.get(family.name, "")
        shown = f"{name}{{{names}}}" if names else name
        lines.append(f"| `{shown}` | {family.type} | {family.documentation} |")
    return "\n".join(lines) + "\n"


def write_into(doc: Path) -> None:
    write_section(doc, SETTINGS_BEGIN, SETTINGS_END, render_settings())
    write_section(doc, ATTRIBUTES_BEGIN, ATTRIBUTES_END, render_attributes())
    write_section(doc, METRICS_BEGIN, METRICS_END, render_metrics())
