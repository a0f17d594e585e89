"""Reading the registry: versions of the routing model with their tags, stage and aliases; resolving a reference.

Never changes the registry (promotion does) and never loads a model (loading does).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from registry import names
from registry.errors import RegistryError


@dataclass(frozen=True)
class VersionInfo:
    """One registered version, as `routeiq models list` shows it."""

    version: int
    family: str
    stage: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    source: str
    run_id: str
    tags: dict[str, str]


def info(version: ModelVersion, aliases: list[str] | None = None) -> VersionInfo:
    tags = dict(version.tags or {})
    metrics = {
        k[len(names.TAG_METRIC_PREFIX) :]: float(v) for k, v in tags.items() if k.startswith(names.TAG_METRIC_PREFIX)
    }
    return VersionInfo(
        version=int(version.version),
        family=tags.get(names.TAG_FAMILY, "?"),
        stage=version.current_stage or "None",
        aliases=tuple(sorted(aliases if aliases is not None else (version.aliases or ()))),
        metrics=metrics,
        source=str(version.source),
        run_id=str(version.run_id or ""),
        tags=tags,
    )


def list_versions(client: MlflowClient) -> list[VersionInfo]:
    """Every version of the routing model, newest first (empty when nothing is registered)."""
    found = client.search_model_versions(f"name='{names.REGISTERED_MODEL}'")
    if not found:
        return []
    # Search results leave aliases out; the registered model knows them.
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(names.REGISTERED_MODEL).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    return sorted((info(v, aliases.get(str(v.version), [])) for v in found), key=lambda v: -v.version)


def get_version(client: MlflowClient, version: int) -> VersionInfo:
    try:
        return info(client.get_model_version(names.REGISTERED_MODEL, str(version)))
    except MlflowException as exc:
        raise RegistryError(
            f"{names.REGISTERED_MODEL} has no version {version}; 'routeiq models list' shows the versions"
        ) from exc


def production(client: MlflowClient) -> VersionInfo | None:
    """The version in Production: the `production` alias when set, else the Production stage."""
    try:
        return info(client.get_model_version_by_alias(names.REGISTERED_MODEL, names.PRODUCTION_ALIAS))
    except MlflowException:
        pass
    staged = [v for v in list_versions(client) if v.stage == names.PRODUCTION_STAGE]
    return staged[0] if staged else None
