"""Router families by name → "module:Class", imported lazily (the gateway never imports torch needlessly)."""

from __future__ import annotations

import importlib
from typing import cast

from routers.base import AnyRouter, Router, RouterError

FAMILIES = {
    "knn": "routers.knn:KnnRouter",
    "mlp": "routers.mlp:MlpRouter",
    "svm": "routers.svm:SvmRouter",
    "matrix_factorization": "routers.matrix_factorization:MatrixFactorizationRouter",
    "elo": "routers.elo:EloRouter",
    "graph": "routers.graph:GraphRouter",
    "dual_contrastive": "routers.dual_contrastive:DualContrastiveRouter",
    "transformer": "routers.transformer:TransformerRouter",
    "hybrid": "routers.hybrid:HybridRouter",
    "cascade": "routers.cascade:CascadeRouter",
    "cheapest": "routers.baselines:CheapestRouter",
    "strongest": "routers.baselines:StrongestRouter",
    "random": "routers.baselines:RandomRouter",
    "fixed": "routers.baselines:FixedRouter",
    "oracle": "routers.baselines:OracleRouter",
    "custom": "routers.custom:CustomRouter",
    "ensemble": "routers.ensemble:EnsembleRouter",
}
EVALUATION_ONLY = frozenset({"oracle"})
"""Families that need the true outcomes at prediction time: never registered for serving."""


def family_class(name: str, custom_path: str | None = None) -> type[AnyRouter]:
    """The router class of a family; `custom` takes a dotted "module:Class" or "module.Class" path."""
    if name == "custom" and custom_path:
        return load_custom(custom_path)
    if name not in FAMILIES:
        raise RouterError(f"unknown router family {name!r}; choose one of {', '.join(FAMILIES)}")
    module, _, attr = FAMILIES[name].partition(":")
    return cast(type[AnyRouter], getattr(importlib.import_module(module), attr))


def load_custom(path: str) -> type[AnyRouter]:
    """Import a user router class by dotted path and check it implements the interface."""
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise RouterError(f"custom router {path!r} must be a dotted path like 'package.module:ClassName'")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise RouterError(f"custom router {path!r} cannot be imported: {exc}") from exc
    if not isinstance(cls, type) or not issubclass(cls, Router):
        raise RouterError(f"custom router {path!r} must subclass routers.base.Router")
    missing = [m for m in ("_fit", "_predict") if getattr(cls, m, None) is getattr(Router, m)]
    if missing or getattr(cls, "__abstractmethods__", None):
        raise RouterError(f"custom router {path!r} does not implement {missing or sorted(cls.__abstractmethods__)}")
    if getattr(cls, "family", None) != "custom":
        raise RouterError(f'custom router {path!r} must set the class attribute family = "custom"')
    return cls
