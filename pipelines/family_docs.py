"""`routeiq report families`: the per-family sections of docs/routers.md, generated from the registry
(docstring, source, features, hyper-parameters and their defaults) so they never drift from the code."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.doc_sections import markers, write_section
from routers.registry import EVALUATION_ONLY, FAMILIES, family_class

BEGIN, END = markers("families", "routeiq report families")


def section(name: str) -> str:
    cls = family_class(name)
    idea = " ".join((cls.__doc__ or "").split())
    lines = [f"### `{name}`", "", idea, ""]
    lines.append(f"- Source: {cls.source or 'RouteIQ'}.")
    lines.append(f"- Features: `{cls.features}`.")
    fields = cls.Params.model_fields
    if fields:
        params = ", ".join(f"`{k}` = `{json.dumps(v.default)}`" for k, v in fields.items())
        lines.append(f"- Hyper-parameters (defaults; the Optuna space is on the family page): {params}.")
    else:
        lines.append("- Hyper-parameters: none.")
    if name in EVALUATION_ONLY:
        lines.append("- Evaluation only: never registered for serving.")
    page = "baselines" if cls.source == "baseline" else name
    lines.append(f"- Details: [docs/routers/{page}.md](routers/{page}.md).")
    return "\n".join(lines) + "\n"


def render() -> str:
    return "\n".join(section(name) for name in FAMILIES)


def write_into(doc: Path, text: str) -> None:
    write_section(doc, BEGIN, END, text)
