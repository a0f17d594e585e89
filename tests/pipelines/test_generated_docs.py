"""Generated sections of the docs match the code that generates them (regenerate, never hand-edit)."""

from __future__ import annotations

from pathlib import Path

from pipelines import family_docs, gateway_docs
from pipelines.doc_sections import current_section
from routers.registry import FAMILIES

REPO = Path(__file__).resolve().parents[2]


def test_family_sections_of_routers_md_are_current() -> None:
    text = (REPO / "docs" / "routers.md").read_text()
    current = text.partition(family_docs.BEGIN)[2].partition(family_docs.END)[0]
    assert current.strip() == family_docs.render().strip(), "run `routeiq report families` and commit docs/routers.md"


def test_every_family_has_a_page_and_a_params_section() -> None:
    params = (REPO / "params.yaml").read_text()
    for name in FAMILIES:
        page = "baselines" if name in {"cheapest", "strongest", "random", "fixed", "oracle"} else name
        assert (REPO / "docs" / "routers" / f"{page}.md").is_file(), name
        if name != "oracle":
            assert f"  {name}: {{" in params, f"params.yaml lacks tune.{name}"


def test_gateway_settings_span_attributes_and_metrics_in_gateway_md_are_current() -> None:
    doc = REPO / "docs" / "gateway.md"
    hint = "run `routeiq report gateway` and commit docs/gateway.md"
    settings = current_section(doc, gateway_docs.SETTINGS_BEGIN, gateway_docs.SETTINGS_END)
    assert settings.strip() == gateway_docs.render_settings().strip(), hint
    spans = current_section(doc, gateway_docs.ATTRIBUTES_BEGIN, gateway_docs.ATTRIBUTES_END)
    assert spans.strip() == gateway_docs.render_attributes().strip(), hint
    assert "routeiq.feedback.score" in spans and "| `virtual_model` |" in settings
    metrics = current_section(doc, gateway_docs.METRICS_BEGIN, gateway_docs.METRICS_END)
    assert metrics.strip() == gateway_docs.render_metrics().strip(), hint
    assert "`routeiq_requests_total{endpoint,model,status}` | counter" in metrics
    assert "`routeiq_circuit_state{model,state}` | gauge" in metrics and "`routeiq_in_flight` | gauge" in metrics
