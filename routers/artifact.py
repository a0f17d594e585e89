"""A trained router on disk without pickle: JSON metadata, safetensors arrays, a manifest of SHA-256 hashes,
and an optional signature over the manifest. Loading verifies all of it before any state is used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from features.base import Featurizer
from features.registry import restore
from features.spec import FeatureSpec
from routers.base import AnyRouter, RouterError
from routers.registry import family_class
from routers.signing import SignatureError, Signer, Verifier

FORMAT_VERSION = 1
META_FILE = "router.json"
STATE_FILE = "state.safetensors"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
ROUTER_PREFIX = "router/"
FEATURES_PREFIX = "features/"


class ArtifactError(ValueError):
    """An artifact is incomplete, altered or from an incompatible version; the message says what to do."""


@dataclass(frozen=True)
class LoadedRouter:
    """A verified artifact: the router, its fitted featurizer, and its metadata."""

    router: AnyRouter
    featurizer: Featurizer
    meta: dict[str, Any]


def save(directory: Path, router: AnyRouter, featurizer: Featurizer, signer: Signer | None = None) -> dict[str, Any]:
    """Write the artifact into `directory` (created); returns the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "family": router.family,
        "class": f"{type(router).__module__}:{type(router).__qualname__}",
        "params": router.params.model_dump(mode="json"),
        "seed": router.seed,
        "models": list(router.models_),
        "feature_spec": featurizer.spec.model_dump(mode="json"),
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    arrays = {ROUTER_PREFIX + k: np.ascontiguousarray(v) for k, v in router.get_state().items()}
    arrays |= {FEATURES_PREFIX + k: np.ascontiguousarray(v) for k, v in featurizer.get_state().items()}
    save_file(arrays, str(directory / STATE_FILE))
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {n: file_sha256(directory / n) for n in (META_FILE, STATE_FILE)},
    }
    payload = _canonical(manifest)
    (directory / MANIFEST_FILE).write_bytes(payload)
    if signer is not None:
        (directory / SIGNATURE_FILE).write_text(
            json.dumps({"scheme": signer.scheme, "signature": signer.sign(payload)})
        )
    return manifest


def load(
    directory: Path,
    verifier: Verifier | None = None,
    require_signature: bool = False,
    allowed_custom: Collection[str] | None = None,
) -> LoadedRouter:
    """Verify hashes (and the signature when a verifier is given or required), then rebuild the router.

    `allowed_custom`, when given, lists the `module:Class` paths a custom-family artifact may import.
    """
    _verify(directory, verifier, require_signature)
    meta = json.loads((directory / META_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{directory}: artifact format {meta.get('format_version')} is not {FORMAT_VERSION}")
    if meta["family"] == "custom" and allowed_custom is not None and meta["class"] not in allowed_custom:
        raise ArtifactError(
            f"custom router class {meta['class']!r} is not allowed here; add it to allowed_custom_routers "
            "if you trust that code"
        )
    arrays = load_file(str(directory / STATE_FILE))
    spec = FeatureSpec.model_validate(meta["feature_spec"])
    featurizer = restore(spec, _prefixed(arrays, FEATURES_PREFIX))
    cls = family_class(meta["family"], meta["class"] if meta["family"] == "custom" else None)
    router = cls(cls.Params.model_validate(meta["params"]), seed=int(meta["seed"]))
    router.models_ = tuple(meta["models"])
    router.set_state(_prefixed(arrays, ROUTER_PREFIX))
    return LoadedRouter(router=router, featurizer=featurizer, meta=meta)


def _verify(directory: Path, verifier: Verifier | None, require_signature: bool) -> None:
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST_FILE}; it is not a RouteIQ router artifact")
    payload = manifest_path.read_bytes()
    manifest = json.loads(payload)
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file() or file_sha256(path) != expected:
            raise ArtifactError(f"{directory}/{name} is missing or altered (hash mismatch); re-download the artifact")
    signature_path = directory / SIGNATURE_FILE
    if verifier is None:
        if require_signature:
            raise SignatureError("a signed artifact is required but no verification key is configured")
        return
    if not signature_path.is_file():
        raise SignatureError(f"{directory} is not signed but a signature is required; sign it when saving")
    signed = json.loads(signature_path.read_text())
    if signed.get("scheme") != verifier.scheme:
        raise SignatureError(f"artifact is signed with {signed.get('scheme')!r}, expected {verifier.scheme!r}")
    verifier.verify(payload, str(signed.get("signature", "")))


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["ArtifactError", "LoadedRouter", "RouterError", "load", "save"]
