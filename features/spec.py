"""The feature spec (name, version, parameters) stored with every trained router, and its compatibility check.

Pure data; it never builds a featurizer (features/registry.py does).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FeatureSpecMismatch(ValueError):
    """A router was trained on features this code does not provide; the message says what to change."""


class FeatureSpec(BaseModel):
    """What turns a prompt into the router's input: a featurizer name, its code version and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int = Field(ge=1)
    params: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        """Canonical one-line form, used as an MLflow tag and in error messages."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def check_compatible(stored: FeatureSpec, provided: FeatureSpec) -> None:
    """Refuse a router whose stored spec differs from the one the serving code provides."""
    if stored == provided:
        return
    if stored.name != provided.name or stored.version != provided.version:
        raise FeatureSpecMismatch(
            f"router was trained on features {stored.name!r} v{stored.version} but this code provides "
            f"{provided.name!r} v{provided.version}; retrain the router or run the code version it was trained with"
        )
    raise FeatureSpecMismatch(
        f"router was trained on features {stored.key()} but {provided.key()} is configured; "
        "use the router's own feature parameters"
    )
