"""Text "features": the prompts themselves, for families that read raw text with their own encoder.

Stateless; the only featurizer whose rows are strings (an object array), not float32 vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from features.base import Featurizer


class TextFeaturizer(Featurizer):
    """Passes prompts through unchanged."""

    name = "text"
    version = 1

    def fit(self, prompts: Sequence[str]) -> Self:
        del prompts
        return self

    def transform(self, prompts: Sequence[str]) -> npt.NDArray[Any]:
        out = np.empty(len(prompts), dtype=object)
        out[:] = list(prompts)
        return out
