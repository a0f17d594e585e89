"""Readers of the public outcome data sets, by name, imported lazily. They parse; they build no table."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

from pipelines.sources.record import SourceFormatError, SourceRecord

SOURCES = {
    "routerbench": "pipelines.sources.routerbench",
    "llmrouter": "pipelines.sources.llmrouter",
    "routerarena": "pipelines.sources.routerarena",
}

Reader = Callable[[Path], Iterator[SourceRecord]]


def reader(name: str) -> Reader:
    """The `read(path)` function of a source, by name."""
    if name not in SOURCES:
        raise SourceFormatError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    return cast(Reader, importlib.import_module(SOURCES[name]).read)


__all__ = ["SOURCES", "SourceFormatError", "SourceRecord", "reader"]
