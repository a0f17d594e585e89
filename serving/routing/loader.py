"""Loading one router version for serving: download, verify (hashes, signature, feature spec, family,
candidates), warm up. Blocking; the poller runs it off the event loop. Never swaps anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from registry.loading import load_reference
from registry.reference import Reference
from routers.routing_model import RoutingModel
from routers.signing import Verifier
from serving.routing.threads import limit_inference_threads
from serving.settings import RoutingSettings

CASCADE_FAMILY = "cascade"


class RouterLoadError(ValueError):
    """A version cannot serve here; the message says which check failed and what to change."""


@dataclass(frozen=True)
class ActiveRouter:
    """A verified, warmed router and what it routes among; replaced whole, never mutated."""

    model: RoutingModel
    version: int | None
    family: str
    reference: str
    candidates: tuple[str, ...]
    feature_spec: str
    loaded_at: float

    @property
    def label(self) -> str:
        """The version as response headers and spans show it (`3`, or `local` for a directory)."""
        return str(self.version) if self.version is not None else "local"


def load_router(
    reference: Reference, version: int | None, routing: RoutingSettings, served: Sequence[str]
) -> ActiveRouter:
    """Load `version` of `reference` (or its directory) and check it can route among `served` models."""
    uri = str(reference.directory) if reference.directory is not None else reference.version_uri(version or 0)
    verifier = _verifier(routing)
    try:
        loaded = load_reference(
            uri,
            verifier=verifier,
            require_signature=bool(routing.signing and routing.signing.required),
            allowed_custom=None if verifier is not None else routing.allowed_custom_routers,
        )
    except Exception as exc:
        raise RouterLoadError(f"cannot load {uri}: {exc}") from exc
    family = loaded.router.family
    if routing.family and family != routing.family:
        raise RouterLoadError(
            f"{uri} is a {family!r} router but routing_strategy is llmrouter-{routing.family}; "
            f"promote a {routing.family} version or set routing_strategy: llmrouter-{family} (or llmrouter-any)"
        )
    candidates = _candidates(uri, loaded.router.models_, served, routing.allow_partial_candidates)
    model = RoutingModel(loaded.featurizer, loaded.router)
    limit_inference_threads(routing.inference_threads)  # after the load: it may have brought in torch
    try:
        model.decide(list(routing.warmup_prompts), candidates)
    except Exception as exc:
        raise RouterLoadError(f"{uri} failed its warm-up predictions: {exc}") from exc
    return ActiveRouter(
        model=model,
        version=version,
        family=family,
        reference=reference.raw,
        candidates=candidates,
        feature_spec=loaded.featurizer.spec.key(),
        loaded_at=time.time(),
    )


def _candidates(uri: str, known: Sequence[str], served: Sequence[str], partial: bool) -> tuple[str, ...]:
    missing = [m for m in known if m not in served]
    shared = tuple(m for m in known if m in served)
    if missing and not partial:
        raise RouterLoadError(
            f"{uri} routes among models this gateway does not serve ({', '.join(missing)}); add them to "
            "model_list, or set routeiq_settings.routing.allow_partial_candidates: true"
        )
    if not shared:
        raise RouterLoadError(f"{uri} knows none of the models in model_list ({', '.join(served)})")
    return shared


def _verifier(routing: RoutingSettings) -> Verifier | None:
    if routing.signing is None:
        return None
    return Verifier(scheme=routing.signing.scheme, key=routing.signing.key.encode())
