"""Optional signatures over an artifact manifest: HMAC-SHA256 with a shared key, or Ed25519 key pairs.

Pure crypto on bytes; reading keys from files or the environment is the caller's job.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

HMAC_SHA256 = "hmac-sha256"
ED25519 = "ed25519"


class SignatureError(ValueError):
    """A signature is missing, malformed or does not match; the message says what to check."""


@dataclass(frozen=True)
class Signer:
    """Signs manifests: `key` is the shared secret (HMAC) or a PEM private key (Ed25519)."""

    scheme: str
    key: bytes

    def sign(self, payload: bytes) -> str:
        if self.scheme == HMAC_SHA256:
            return hmac.new(self.key, payload, hashlib.sha256).hexdigest()
        if self.scheme == ED25519:
            private = load_pem_private_key(self.key, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise SignatureError("the Ed25519 signing key is not an Ed25519 private key in PEM form")
            return private.sign(payload).hex()
        raise SignatureError(f"unknown signature scheme {self.scheme!r}; use {HMAC_SHA256} or {ED25519}")


@dataclass(frozen=True)
class Verifier:
    """Checks manifests: `key` is the shared secret (HMAC) or a PEM public key (Ed25519)."""

    scheme: str
    key: bytes

    def verify(self, payload: bytes, signature: str) -> None:
        if self.scheme == HMAC_SHA256:
            expected = hmac.new(self.key, payload, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                raise SignatureError("artifact signature does not match (HMAC-SHA256); was it signed with this key?")
            return
        if self.scheme == ED25519:
            public = load_pem_public_key(self.key)
            if not isinstance(public, Ed25519PublicKey):
                raise SignatureError("the Ed25519 verification key is not an Ed25519 public key in PEM form")
            try:
                public.verify(bytes.fromhex(signature), payload)
            except (InvalidSignature, ValueError) as exc:
                raise SignatureError(
                    "artifact signature does not match (Ed25519); was it signed with this key?"
                ) from exc
            return
        raise SignatureError(f"unknown signature scheme {self.scheme!r}; use {HMAC_SHA256} or {ED25519}")
