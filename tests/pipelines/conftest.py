"""Outcome tables imported once per session from the real routing data."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.outcomes import ImportStats, import_source


@pytest.fixture(scope="session")
def routerbench(data_dir: Path) -> tuple[pa.Table, ImportStats]:
    return import_source("routerbench", data_dir / "routerbench")


@pytest.fixture(scope="session")
def llmrouter(data_dir: Path) -> tuple[pa.Table, ImportStats]:
    return import_source("llmrouter", data_dir / "llmrouter")


@pytest.fixture(scope="session")
def routerarena(data_dir: Path) -> tuple[pa.Table, ImportStats]:
    return import_source("routerarena", data_dir / "routerarena")
