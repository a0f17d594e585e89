"""Fast features: TF-IDF over word n-grams → a fitted linear projection, plus prompt statistics.

Vocabulary, IDF weights, projection and the statistics' scaling are fitted in training and shipped as arrays.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Final, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from features.base import Featurizer, Matrix, NotFittedError, State
from features.prompt import clip
from features.text_stats import NAMES as STAT_NAMES
from features.text_stats import prompt_stats

TOKEN: Final = re.compile(r"(?u)\b\w\w+\b")
SEPARATOR: Final = "\n"
"""Joins the vocabulary into one byte array; n-grams are words joined by spaces, so never contain it."""


class FastParams(BaseModel):
    """Text window, n-gram range, vocabulary size and the size of the projected text vector."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_chars: int = Field(default=1024, ge=64)
    """Longer prompts are read as their first quarter and last three quarters of this many characters."""
    max_ngram: int = Field(default=2, ge=1, le=3)
    vocabulary: int = Field(default=20_000, ge=16)
    min_df: int = Field(default=2, ge=1)
    components: int = Field(default=64, ge=2)
    seed: int = 0


def grams(text: str, max_ngram: int) -> list[str]:
    """Lower-cased word n-grams (words of two or more word characters), n = 1..max_ngram."""
    words = TOKEN.findall(text.lower())
    out = list(words)
    for n in range(2, max_ngram + 1):
        out += map(" ".join, zip(*(words[i:] for i in range(n)), strict=False))
    return out


class FastFeaturizer(Featurizer):
    """A fraction of a millisecond per prompt on a CPU; the default features of every family."""

    name = "fast"
    version = 1
    Params = FastParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.vocabulary_: list[str] | None = None
        self.idf_: np.ndarray | None = None
        self.projection_: np.ndarray | None = None
        self.stats_mean_: np.ndarray | None = None
        self.stats_scale_: np.ndarray | None = None
        self._index: dict[str, int] = {}

    @property
    def p(self) -> FastParams:
        assert isinstance(self.params, FastParams)
        return self.params

    def fit(self, prompts: Sequence[str]) -> Self:
        docs = [grams(clip(text, self.p.max_chars), self.p.max_ngram) for text in prompts]
        frequency: Counter[str] = Counter()
        for doc in docs:
            frequency.update(set(doc))
        kept = sorted((g for g, c in frequency.items() if c >= self.p.min_df), key=lambda g: (-frequency[g], g))
        self.vocabulary_ = kept[: self.p.vocabulary]
        self._index = {g: i for i, g in enumerate(self.vocabulary_)}
        df = np.asarray([frequency[g] for g in self.vocabulary_], dtype=np.float64)
        self.idf_ = (np.log((1 + len(docs)) / (1 + df)) + 1).astype(np.float32)
        tfidf = sparse.vstack([self._weights_row(doc) for doc in docs]).tocsr()
        components = max(1, min(self.p.components, min(tfidf.shape) - 1))
        svd = TruncatedSVD(n_components=components, random_state=self.p.seed, algorithm="randomized")
        svd.fit(tfidf)
        self.projection_ = np.ascontiguousarray(svd.components_.T, dtype=np.float32)
        stats = self._stats(prompts)
        self.stats_mean_ = stats.mean(axis=0)
        self.stats_scale_ = np.where(stats.std(axis=0) > 1e-6, stats.std(axis=0), 1.0).astype(np.float32)
        return self

    def _stats(self, prompts: Sequence[str]) -> np.ndarray:
        rows = [prompt_stats(clip(text, self.p.max_chars), len(text)) for text in prompts]
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(STAT_NAMES))

    def _weights(self, doc: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary columns of a document and their L2-normalised TF-IDF weights."""
        assert self.idf_ is not None
        found = Counter(i for i in map(self._index.get, doc) if i is not None)
        if not found:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        columns = np.fromiter(found.keys(), dtype=np.intp, count=len(found))
        weights = np.fromiter(found.values(), dtype=np.float32, count=len(found)) * self.idf_[columns]
        return columns, (weights / np.linalg.norm(weights)).astype(np.float32)

    def _weights_row(self, doc: list[str]) -> sparse.csr_matrix:
        columns, weights = self._weights(doc)
        width = len(self._index)
        return sparse.csr_matrix((weights, columns, [0, len(columns)]), shape=(1, width))

    def transform(self, prompts: Sequence[str]) -> Matrix:
        if self.projection_ is None or self.stats_mean_ is None or self.stats_scale_ is None:
            raise NotFittedError("fast features are not fitted; call fit(prompts) or load a trained router")
        text = np.zeros((len(prompts), self.projection_.shape[1]), dtype=np.float32)
        for row, prompt in enumerate(prompts):
            columns, weights = self._weights(grams(clip(prompt, self.p.max_chars), self.p.max_ngram))
            if len(columns):
                text[row] = weights @ self.projection_[columns]
        stats = (self._stats(prompts) - self.stats_mean_) / self.stats_scale_
        return np.hstack([text, stats]).astype(np.float32)

    def get_state(self) -> State:
        if self.vocabulary_ is None or self.idf_ is None or self.projection_ is None:
            raise NotFittedError("fast features are not fitted; nothing to save")
        assert self.stats_mean_ is not None and self.stats_scale_ is not None
        return {
            "vocabulary": np.frombuffer(SEPARATOR.join(self.vocabulary_).encode("utf-8"), dtype=np.uint8).copy(),
            "idf": self.idf_,
            "projection": self.projection_,
            "stats_mean": self.stats_mean_,
            "stats_scale": self.stats_scale_,
        }

    def set_state(self, state: State) -> None:
        text = np.asarray(state["vocabulary"], dtype=np.uint8).tobytes().decode("utf-8")
        self.vocabulary_ = text.split(SEPARATOR) if text else []
        self._index = {g: i for i, g in enumerate(self.vocabulary_)}
        self.idf_ = np.asarray(state["idf"], dtype=np.float32)
        self.projection_ = np.asarray(state["projection"], dtype=np.float32)
        self.stats_mean_ = np.asarray(state["stats_mean"], dtype=np.float32)
        self.stats_scale_ = np.asarray(state["stats_scale"], dtype=np.float32)
