"""Ensemble router: kNN, matrix factorisation and MLP fitted on train, their predicted qualities stacked per
candidate with non-negative weights fitted on the validation split.

Members are built through the registry (families never import each other); it never decides and does no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from routers.base import AnyRouter, Features, Router, State
from routers.cost_model import broadcast, mean_costs
from routers.dataset import FloatMatrix, TrainingSet
from routers.registry import family_class
from routers.stacking import stacked, stacking_weights

MEMBERS = ("knn", "matrix_factorization", "mlp")
"""Member families, in the order of the stacking weights' columns."""


class EnsembleParams(BaseModel):
    """Each member's hyper-parameters (that family's Params as JSON; empty = its defaults) and the weight pooling."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    knn: dict[str, Any] = {}
    matrix_factorization: dict[str, Any] = {}
    mlp: dict[str, Any] = {}
    shared_weights: bool = True
    """One stacking weight vector for every candidate (intercepts stay per candidate); else one per candidate."""


class _Prefixed:
    """An Optuna trial whose parameter names carry a member's name, so the members' spaces never collide."""

    def __init__(self, trial: Any, prefix: str) -> None:
        self._trial, self._prefix = trial, prefix

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._trial, name)
        if not name.startswith("suggest_"):
            return method
        return lambda param, *args, **kwargs: method(f"{self._prefix}.{param}", *args, **kwargs)


class EnsembleRouter(Router[EnsembleParams]):
    """q̂_j(x) = b_j + Σ_k a_k q̂ᵏ_j(x) over the kNN, MF and MLP members, a ≥ 0 and b fitted on the validation
    split (a_jk per candidate without `shared_weights`)."""

    family = "ensemble"
    source = "stacked generalisation (Wolpert, 1992) of the RouterBench kNN/MLP and RouteLLM MF routers"
    Params = EnsembleParams
    features = "semantic"

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        super().__init__(params, seed=seed)
        self.members_: list[AnyRouter] = []

    @classmethod
    def search_space(cls, trial: Any) -> EnsembleParams:
        members = {
            name: family_class(name).search_space(_Prefixed(trial, name)).model_dump(mode="json") for name in MEMBERS
        }
        return EnsembleParams(**members)

    def _member(self, name: str) -> AnyRouter:
        cls = family_class(name)
        return cls(cls.Params.model_validate(getattr(self.params, name)), seed=self.seed)

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        self.members_ = [self._member(name).fit(train, valid) for name in MEMBERS]
        self.cost_ = mean_costs(train)
        held_out = valid if valid is not None and valid.features is not None and valid.known.any() else train
        assert held_out.features is not None
        observed = np.where(held_out.known, held_out.weight, 0.0)
        self.weight_, self.intercept_ = stacking_weights(
            self._member_qualities(held_out.features), held_out.quality, observed, shared=self.params.shared_weights
        )

    def _member_qualities(self, features: Features) -> FloatMatrix:
        """(members, prompts, candidates) predicted qualities."""
        return np.stack([member.predict(features).quality for member in self.members_])

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        quality = stacked(self._member_qualities(features), self.weight_, self.intercept_)
        return quality, broadcast(self.cost_, len(features))

    def get_state(self) -> State:
        state = super().get_state()
        for name, member in zip(MEMBERS, self.members_, strict=True):
            state |= {f"{name}.{key}": value for key, value in member.get_state().items()}
        return state

    def set_state(self, state: State) -> None:
        own = {k: v for k, v in state.items() if k.partition(".")[0] not in MEMBERS}
        super().set_state(own)
        self.members_ = []
        for name in MEMBERS:
            member = self._member(name)
            member.models_ = self.models_
            member.set_state({k.partition(".")[2]: v for k, v in state.items() if k.partition(".")[0] == name})
            self.members_.append(member)
