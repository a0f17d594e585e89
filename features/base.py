"""The featurizer interface: fit on training prompts, transform prompts to a dense float32 matrix.

Fitted state is a dict of numpy arrays (saved without pickle by the caller); no file or network I/O here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from features.spec import FeatureSpec

Matrix = npt.NDArray[np.float32]
State = dict[str, npt.NDArray[np.generic]]


class NoParams(BaseModel):
    """For featurizers without parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NotFittedError(RuntimeError):
    """A fitted transform was used before `fit` or `set_state`."""


class Featurizer(ABC):
    """Prompt texts → features. Subclasses set `name`, `version` (bump on any output change) and `Params`."""

    name: ClassVar[str]
    version: ClassVar[int]
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(name=self.name, version=self.version, params=self.params.model_dump(mode="json"))

    @abstractmethod
    def fit(self, prompts: Sequence[str]) -> Self:
        """Learn any fitted state from training prompts (stateless featurizers return self)."""

    @abstractmethod
    def transform(self, prompts: Sequence[str]) -> Matrix:
        """One float32 row per prompt."""

    def get_state(self) -> State:
        """Fitted arrays, by name; empty for stateless featurizers."""
        return {}

    def set_state(self, state: State) -> None:
        """Restore what `get_state` returned."""
        del state
