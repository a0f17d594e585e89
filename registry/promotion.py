"""Promotion through a gate: a candidate must beat the current Production version on the stored test metric.

On success it sets the "Production" stage (archiving the previous) and the `production` alias, so both the
legacy stage view and the alias view of the MLflow UI agree. `force` skips the gate and is recorded.
"""

from __future__ import annotations

import datetime as dt
import getpass
import warnings
from dataclasses import dataclass

from mlflow import MlflowClient

from registry import names
from registry.errors import RegistryError
from registry.versions import VersionInfo, production


class GateRefused(ValueError):
    """The candidate does not beat Production; the message gives both numbers and how to override."""


@dataclass(frozen=True)
class Promotion:
    promoted: VersionInfo
    previous: VersionInfo | None
    forced: bool


def gate(candidate: VersionInfo, current: VersionInfo | None, metric: str = names.GATE_METRIC) -> None:
    """Raise GateRefused unless the candidate's metric is strictly higher than Production's. A version trained
    on logged traffic must also beat, off-policy, the policy that logged it — by the whole 95% interval of its
    paired advantage on the held-out log — and is compared with Production on that off-policy estimate when
    both have one."""
    estimated = candidate.metrics.get(names.OFF_POLICY_METRIC)
    if estimated is not None:
        logging = candidate.metrics.get(names.LOGGING_POLICY_METRIC, float("-inf"))
        # Where the version stored its paired advantage, the whole 95% interval must be above 0.
        surely = candidate.metrics.get(names.ADVANTAGE_LOW_METRIC, estimated - logging)
        if estimated <= logging or surely <= 0.0:
            how = "does not beat" if estimated <= logging else "is not surely above"
            raise GateRefused(
                f"version {candidate.version}: off-policy {names.OFF_POLICY_METRIC}={estimated:.4f} {how} "
                f"the logging policy ({logging:.4f}) on the held-out log{_evidence(candidate)}; log more traffic, "
                "or pass --force to promote anyway (recorded)"
            )
        if current is not None and names.OFF_POLICY_METRIC in current.metrics:
            metric = names.OFF_POLICY_METRIC
    if metric not in candidate.metrics:
        raise RegistryError(f"version {candidate.version} has no stored {metric!r}; it cannot be gated")
    if current is None or current.version == candidate.version:
        return
    theirs = current.metrics.get(metric, float("-inf"))
    if candidate.metrics[metric] <= theirs:
        raise GateRefused(
            f"version {candidate.version} {metric}={candidate.metrics[metric]:.4f} does not beat Production "
            f"version {current.version} ({theirs:.4f}); pass --force to promote anyway (recorded)"
        )


def _evidence(candidate: VersionInfo) -> str:
    """The advantage's interval and the effective samples behind it, when the version stored them."""
    m = candidate.metrics
    keys = (names.ADVANTAGE_LOW_METRIC, "test_dr_advantage_high", "test_ope_effective_samples")
    if not all(k in m for k in keys):
        return ""
    low, high, effective = (m[k] for k in keys)
    return f" (advantage 95% interval [{low:+.4f}, {high:+.4f}] on {effective:.0f} effective samples)"


def promote(client: MlflowClient, candidate: VersionInfo, force: bool = False, reason: str = "") -> Promotion:
    """Gate (unless forced), then move the stage and the alias; returns what changed."""
    current = production(client)
    if not force:
        gate(candidate, current)
    version = str(candidate.version)
    with warnings.catch_warnings():
        # Stages are deprecated in MLflow 3 but are still what the registry UI's stage dropdown shows.
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(
            names.REGISTERED_MODEL, version, names.PRODUCTION_STAGE, archive_existing_versions=True
        )
    client.set_registered_model_alias(names.REGISTERED_MODEL, names.PRODUCTION_ALIAS, version)
    stamp = {
        names.TAG_PROMOTED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        names.TAG_PROMOTED_BY: getpass.getuser(),
        names.TAG_PROMOTION_FORCED: str(force).lower(),
    }
    if reason:
        stamp[names.TAG_PROMOTION_REASON] = reason
    for key, value in stamp.items():
        client.set_model_version_tag(names.REGISTERED_MODEL, version, key, value)
    return Promotion(promoted=candidate, previous=current, forced=force)


def best_version(versions: list[VersionInfo], metric: str = names.GATE_METRIC) -> VersionInfo:
    scored = [v for v in versions if metric in v.metrics]
    if not scored:
        raise RegistryError(f"no registered version has a stored {metric!r}; run 'routeiq train' first")
    return max(scored, key=lambda v: (v.metrics[metric], v.version))
