"""The router interface: fit on a TrainingSet, predict each candidate's expected quality and cost.

Families never decide (routers/decision.py does) and never do I/O (routers/artifact.py saves their state).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from routers.dataset import FloatMatrix, TrainingSet

State = dict[str, npt.NDArray[Any]]
Features = npt.NDArray[Any]
"""One row per prompt: float32 vectors for most families, an object array of texts for text families."""


class NoParams(BaseModel):
    """For families without hyper-parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RouterError(ValueError):
    """A router was used wrongly (unknown candidate, not fitted, bad training data); says what to change."""


class Prediction(NamedTuple):
    """Expected quality (0..1) and cost (USD) of each (prompt, candidate), candidates in the order asked."""

    quality: FloatMatrix
    cost: FloatMatrix


P = TypeVar("P", bound=BaseModel)


class Router(ABC, Generic[P]):
    """Subclasses (`class KnnRouter(Router[KnnParams])`) set `family`, `Params` (a frozen pydantic model) and
    `features`, and implement `_fit` and `_predict`. Learned state lives in attributes ending in `_`."""

    family: ClassVar[str]
    source: ClassVar[str] = ""
    """The paper or system the family follows, for docs/routers.md."""
    Params: ClassVar[type[BaseModel]] = NoParams
    features: ClassVar[str] = "fast"
    """Name of the featurizer (features/registry.py) whose output `predict` takes."""

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        chosen = params if params is not None else self.Params()
        if not isinstance(chosen, self.Params):
            raise RouterError(f"{self.family} takes {self.Params.__name__}, got {type(chosen).__name__}")
        self.params: P = cast(P, chosen)
        self.seed = seed
        self.models_: tuple[str, ...] = ()

    @classmethod
    def search_space(cls, trial: Any) -> BaseModel:
        """Hyper-parameters drawn from an Optuna trial; families without any return their defaults."""
        del trial
        return cls.Params()

    def fit(self, train: TrainingSet, valid: TrainingSet | None = None) -> Self:
        if train.features is None:
            raise RouterError(f"{self.family}: training set has no features; featurize the prompts first")
        if not train.known.any():
            raise RouterError(f"{self.family}: training set has no known quality at all")
        self.models_ = train.models
        self._fit(train, valid)
        return self

    def predict(self, features: Features, candidates: Sequence[str] | None = None) -> Prediction:
        """Predictions for `candidates` (default: every model the router was trained on)."""
        if not self.models_:
            raise RouterError(f"{self.family} router is not fitted; call fit() or load a trained router")
        columns = self.columns(candidates)
        quality, cost = self._predict(features)
        return Prediction(quality[:, columns], cost[:, columns])

    def columns(self, candidates: Sequence[str] | None) -> list[int]:
        if candidates is None:
            return list(range(len(self.models_)))
        unknown = [c for c in candidates if c not in self.models_]
        if unknown or not candidates:
            raise RouterError(
                f"candidates {unknown or '[]'} are not among this router's models {list(self.models_)}; "
                "choose a non-empty subset of them"
            )
        return [self.models_.index(c) for c in candidates]

    @abstractmethod
    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        """Learn from rows whose quality is known, weighting each by `train.weight`."""

    @abstractmethod
    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        """(quality, cost), each of shape (prompts, len(models_))."""

    def get_state(self) -> State:
        """Learned arrays: by default every numpy attribute ending in `_`."""
        return {k[:-1]: v for k, v in vars(self).items() if k.endswith("_") and isinstance(v, np.ndarray)}

    def set_state(self, state: State) -> None:
        for key, value in state.items():
            setattr(self, f"{key}_", value)


AnyRouter = Router[Any]
"""A router of any family, where the parameter type does not matter (registry, artifacts, serving)."""
