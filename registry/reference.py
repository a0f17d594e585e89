"""What a watched reference points at now: `models:/NAME/Production` (stage), `models:/NAME@alias`,
`models:/NAME/3` (fixed) or a local artifact directory. Reads the registry; never loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODELS_SCHEME = "models:/"


@dataclass(frozen=True)
class Reference:
    """A parsed reference: exactly one of `directory`, `version`, `stage` or `alias` is set."""

    raw: str
    name: str = ""
    version: int | None = None
    stage: str | None = None
    alias: str | None = None
    directory: Path | None = None

    @property
    def moves(self) -> bool:
        """Whether what it points at can change (a stage or an alias), so polling it makes sense."""
        return self.stage is not None or self.alias is not None

    def version_uri(self, version: int) -> str:
        """The artifact URI of one resolved version."""
        return f"{MODELS_SCHEME}{self.name}/{version}"


def parse_reference(raw: str) -> Reference:
    """Parse `raw`; a string that is not a `models:/` URI is taken as a local artifact directory."""
    if not raw.startswith(MODELS_SCHEME):
        return Reference(raw=raw, directory=Path(raw))
    rest = raw[len(MODELS_SCHEME) :]
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if name and alias:
            return Reference(raw=raw, name=name, alias=alias)
    else:
        name, _, tail = rest.partition("/")
        if name and tail.isdigit():
            return Reference(raw=raw, name=name, version=int(tail))
        if name and tail and "/" not in tail:
            return Reference(raw=raw, name=name, stage=tail)
    raise RegistryError(
        f"registry reference {raw!r} is malformed; use models:/NAME/Production, models:/NAME@alias, "
        "models:/NAME/<version> or a local directory"
    )


def resolve(reference: Reference, client: MlflowClient) -> int | None:
    """The version `reference` points at now; None when nothing is there yet (a fresh registry)."""
    if reference.version is not None or reference.directory is not None:
        return reference.version
    if reference.alias is not None:
        from mlflow.exceptions import MlflowException

        try:
            return int(client.get_model_version_by_alias(reference.name, reference.alias).version)
        except MlflowException:
            return None
    found = client.search_model_versions(f"name='{reference.name}'")
    staged = [int(v.version) for v in found if (v.current_stage or "").lower() == str(reference.stage).lower()]
    return max(staged) if staged else None
