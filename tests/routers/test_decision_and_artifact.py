"""The decision rule, artifact integrity and signatures, without any learned family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from features.fast import FastFeaturizer, FastParams
from routers import artifact
from routers.baselines import CheapestRouter
from routers.dataset import TrainingSet
from routers.decision import choose
from routers.routing_model import RoutingModel
from routers.signing import ED25519, HMAC_SHA256, SignatureError, Signer, Verifier

PROMPTS = ["what is two plus two", "write a python function", "name a colour", "what is two plus three"]


def test_choose_is_argmax_quality_minus_cost_weight_times_cost() -> None:
    quality = np.array([[0.9, 0.8, 0.5], [0.6, 0.6, 0.6]])
    cost = np.array([[0.010, 0.002, 0.001], [0.003, 0.001, 0.002]])
    # λ = 0: best quality; ties (row 2) go to the cheaper candidate.
    assert choose(quality, cost, 0.0).tolist() == [0, 1]
    # λ = 20: row 1 utilities 0.9-0.2=0.70, 0.8-0.04=0.76, 0.5-0.02=0.48 → candidate 1.
    assert choose(quality, cost, 20.0).tolist() == [1, 1]
    # λ = ∞: cheapest.
    assert choose(quality, cost, float("inf")).tolist() == [2, 1]
    with pytest.raises(ValueError, match=">= 0"):
        choose(quality, cost, -1.0)


def _fitted(tmp_path: Path) -> tuple[CheapestRouter, FastFeaturizer]:
    featurizer = FastFeaturizer(FastParams(components=2, min_df=1)).fit(PROMPTS)
    train = TrainingSet(
        prompt_ids=tuple("abcd"),
        prompts=tuple(PROMPTS),
        models=("big", "small"),
        quality=np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, np.nan]]),
        cost=np.array([[0.01, 0.001], [0.02, 0.002], [0.01, 0.001], [0.01, np.nan]]),
        weight=np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]),
        features=featurizer.transform(PROMPTS),
    )
    return CheapestRouter().fit(train), featurizer


def test_routing_model_decides_with_ids_and_candidates(tmp_path: Path) -> None:
    router, featurizer = _fitted(tmp_path)
    decisions = RoutingModel(featurizer, router).decide(PROMPTS[:2], ["big", "small"], cost_weight=1.0)
    assert [d.model for d in decisions] == ["small", "small"]
    # Mean observed cost of "small" over its three known rows: (0.001 + 0.002 + 0.001) / 3.
    assert decisions[0].cost["small"] == pytest.approx(0.004 / 3)
    assert set(decisions[0].as_record()) == {"id", "model", "quality", "cost"}


def test_altered_artifacts_are_refused(tmp_path: Path) -> None:
    router, featurizer = _fitted(tmp_path)
    artifact.save(tmp_path / "a", router, featurizer)
    meta = json.loads((tmp_path / "a" / artifact.META_FILE).read_text())
    meta["models"] = ["small", "big"]
    (tmp_path / "a" / artifact.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(artifact.ArtifactError, match="altered"):
        artifact.load(tmp_path / "a")
    with pytest.raises(artifact.ArtifactError, match="not a RouteIQ router artifact"):
        artifact.load(tmp_path)


def test_hmac_signatures(tmp_path: Path) -> None:
    router, featurizer = _fitted(tmp_path)
    artifact.save(tmp_path / "s", router, featurizer, signer=Signer(HMAC_SHA256, b"k" * 32))
    artifact.load(tmp_path / "s", verifier=Verifier(HMAC_SHA256, b"k" * 32))
    with pytest.raises(SignatureError, match="does not match"):
        artifact.load(tmp_path / "s", verifier=Verifier(HMAC_SHA256, b"x" * 32))
    artifact.save(tmp_path / "u", router, featurizer)
    with pytest.raises(SignatureError, match="no verification key"):
        artifact.load(tmp_path / "u", require_signature=True)
    with pytest.raises(SignatureError, match="not signed"):
        artifact.load(tmp_path / "u", verifier=Verifier(HMAC_SHA256, b"k" * 32))


def test_ed25519_signatures(tmp_path: Path) -> None:
    router, featurizer = _fitted(tmp_path)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    artifact.save(tmp_path / "e", router, featurizer, signer=Signer(ED25519, pem))
    loaded = artifact.load(tmp_path / "e", verifier=Verifier(ED25519, public), require_signature=True)
    assert loaded.router.models_ == ("big", "small")
    with pytest.raises(SignatureError, match="Ed25519"):
        artifact.load(tmp_path / "e", verifier=Verifier(ED25519, other))
