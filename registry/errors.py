"""Errors of the registry package, importable without importing MLflow."""

from __future__ import annotations


class RegistryError(ValueError):
    """A version or reference does not exist in the registry; the message says what to pass instead."""
