"""Names shared with MLflow: the registered model, tag keys, the stage and the alias. Written once here."""

from __future__ import annotations

from typing import Final

REGISTERED_MODEL: Final = "routeiq-router"
PRODUCTION_STAGE: Final = "Production"
ARCHIVED_STAGE: Final = "Archived"
PRODUCTION_ALIAS: Final = "production"
ARTIFACT_DIR: Final = "router_artifact"
"""Artifact key of the pyfunc model: the directory written by routers.artifact.save."""
MODEL_NAME: Final = "router"
"""Name of the logged pyfunc model inside its run."""

TAG_FAMILY: Final = "routeiq.family"
TAG_FEATURE_SPEC: Final = "routeiq.feature_spec"
TAG_CANDIDATES: Final = "routeiq.candidates"
TAG_DATA_HASH: Final = "routeiq.data_hash"
TAG_PARAMS: Final = "routeiq.params"
TAG_GIT_COMMIT: Final = "routeiq.git_commit"
TAG_METRIC_PREFIX: Final = "routeiq.metric."
TAG_PROMOTED_AT: Final = "routeiq.promoted_at"
TAG_PROMOTED_BY: Final = "routeiq.promoted_by"
TAG_PROMOTION_FORCED: Final = "routeiq.promotion_forced"
TAG_PROMOTION_REASON: Final = "routeiq.promotion_reason"
TAG_KIND: Final = "routeiq.kind"
KIND_TRIAL: Final = "trial"
KIND_FAMILY: Final = "family"

GATE_METRIC: Final = "test_aiq"
"""The stored metric a candidate must beat the current Production version on."""
OFF_POLICY_METRIC: Final = "test_dr_utility"
"""On logged traffic: the doubly-robust estimate of quality − λ·cost at the serving λ on the held-out log."""
LOGGING_POLICY_METRIC: Final = "test_logging_utility"
"""On logged traffic: quality − λ·cost the logging policy itself achieved on the same held-out log."""
ADVANTAGE_LOW_METRIC: Final = "test_dr_advantage_low"
"""On logged traffic: the low end of the 95% interval of the paired DR advantage over the logging policy."""
