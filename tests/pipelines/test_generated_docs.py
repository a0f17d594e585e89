"""Generated sections of the docs match the code that generates them (regenerate, never hand-edit)."""

from __future__ import annotations

from pathlib import Path

from pipelines import family_docs
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
