"""Featurizers by name, imported lazily so the gateway never loads a model it does not need."""

from __future__ import annotations

import importlib
from typing import cast

from features.base import Featurizer, State
from features.spec import FeatureSpec, FeatureSpecMismatch

FEATURIZERS = {
    "fast": "features.fast:FastFeaturizer",
    "semantic": "features.semantic:SemanticFeaturizer",
    "text": "features.text:TextFeaturizer",
}


def featurizer_class(name: str) -> type[Featurizer]:
    if name not in FEATURIZERS:
        raise FeatureSpecMismatch(f"unknown features {name!r}; this code provides {sorted(FEATURIZERS)}")
    module, _, attr = FEATURIZERS[name].partition(":")
    return cast(type[Featurizer], getattr(importlib.import_module(module), attr))


def build(name: str, params: dict[str, object] | None = None) -> Featurizer:
    """A new, unfitted featurizer."""
    cls = featurizer_class(name)
    return cls(cls.Params.model_validate(params or {}))


def restore(spec: FeatureSpec, state: State) -> Featurizer:
    """A fitted featurizer from a stored spec and its arrays; refuses a spec this code cannot honour."""
    cls = featurizer_class(spec.name)
    if cls.version != spec.version:
        raise FeatureSpecMismatch(
            f"router was trained on features {spec.name!r} v{spec.version} but this code provides "
            f"v{cls.version}; retrain the router or run the code version it was trained with"
        )
    featurizer = cls(cls.Params.model_validate(spec.params))
    featurizer.set_state(state)
    return featurizer
