"""Cascade router (AutoMix, Madaan et al. 2023): answer with a cheap model, verify the answer, escalate to the
strong model when the verifier expects it to be wrong. Predicts per model and decides only the escalation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router, RouterError
from routers.calibration import sigmoid
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.logistic import fit_logistic_regression, logistic_probability
from routers.model_pair import choose_pair
from routers.preprocessing import scaling, standardize
from routers.verifier_features import ANSWER_STATS, answer_blocks, prompt_blocks


class CascadeParams(BaseModel):
    """The model pair, the text hashing, and the L2 penalties of the prompt models and the verifier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cheap_model: str = ""
    """Empty: the cheapest model whose mean quality is within `quality_gap` of the strong model's."""
    strong_model: str = ""
    """Empty: the model with the best weighted mean training quality."""
    quality_gap: float = Field(default=0.15, ge=0.0, le=1.0)
    hash_dims: int = Field(default=1024, ge=16, le=65536)
    """Buckets for the hashed tokens of the prompt's tail, and as many again for the answer."""
    tail_chars: int = Field(default=400, ge=32)
    """Characters read from the end of the prompt (the question asked, after any few-shot examples)."""
    prompt_l2: float = Field(default=0.03, gt=0.0)
    verifier_l2: float = Field(default=0.03, gt=0.0)


class CascadeRouter(Router[CascadeParams]):
    """predict: every model's expected quality from the prompt alone. Two-step decision: `first_model()`,
    then `escalate(prompt, answer, cost_weight)` using a verifier of recorded answers."""

    family = "cascade"
    source = "AutoMix (Madaan et al., NeurIPS 2024, arXiv:2310.12963); FrugalGPT cascades (Chen et al., 2023)"
    Params = CascadeParams
    features = "text"

    @classmethod
    def search_space(cls, trial: Any) -> CascadeParams:
        return CascadeParams(
            quality_gap=trial.suggest_float("quality_gap", 0.05, 0.3),
            hash_dims=trial.suggest_categorical("hash_dims", [256, 1024, 4096]),
            tail_chars=trial.suggest_int("tail_chars", 200, 1600, log=True),
            prompt_l2=trial.suggest_float("prompt_l2", 1e-3, 10.0, log=True),
            verifier_l2=trial.suggest_float("verifier_l2", 1e-3, 10.0, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        self.cost_ = mean_costs(train)
        cheap, strong = choose_pair(
            train.models,
            mean_qualities(train),
            self.cost_,
            self.params.quality_gap,
            cheap=self.params.cheap_model,
            strong=self.params.strong_model,
        )
        self.pair_ = np.array([cheap, strong], dtype=np.int64)
        hashed, stats = prompt_blocks(train.prompts, self.params.hash_dims, self.params.tail_chars)
        self.prompt_mean_, self.prompt_scale_ = scaling(stats)
        inputs = np.hstack([hashed, standardize(stats, self.prompt_mean_, self.prompt_scale_)])
        observed = train.known & (train.weight > 0)
        fits = [
            fit_logistic_regression(
                inputs[observed[:, j]],
                train.quality[observed[:, j], j],
                train.weight[observed[:, j], j],
                self.params.prompt_l2,
            )
            for j in range(len(train.models))
        ]
        self.prompt_coef_ = np.stack([coef for coef, _ in fits])
        self.prompt_intercept_ = np.array([intercept for _, intercept in fits])
        self._fit_verifier(train, inputs, observed)

    def _fit_verifier(self, train: TrainingSet, inputs: FloatMatrix, observed: np.ndarray) -> None:
        """Learn P(answer is right) from every recorded answer with a known quality, of any model."""
        answered = np.zeros_like(observed)
        for i, row in enumerate(train.responses):
            answered[i] = [text is not None for text in row]
        rows, models = np.nonzero(observed & answered)
        self.answer_mean_, self.answer_scale_ = np.zeros(ANSWER_STATS), np.ones(ANSWER_STATS)
        self.verifier_coef_, self.verifier_intercept_ = np.zeros(0), np.zeros(1)
        if rows.size == 0:
            return  # no answer text (logged traffic without capture): verification falls back to the prompt
        prompts = [train.prompts[i] for i in rows]
        answers = [str(train.responses[i][j]) for i, j in zip(rows, models, strict=True)]
        hashed, stats = answer_blocks(prompts, answers, self.params.hash_dims)
        self.answer_mean_, self.answer_scale_ = scaling(stats)
        coef, intercept = fit_logistic_regression(
            self._stack(inputs[rows], hashed, stats, models),
            train.quality[rows, models],
            train.weight[rows, models],
            self.params.verifier_l2,
        )
        self.verifier_coef_, self.verifier_intercept_ = coef, np.array([intercept])

    def _stack(
        self, prompt_inputs: FloatMatrix, hashed: FloatMatrix, stats: FloatMatrix, models: np.ndarray
    ) -> FloatMatrix:
        """Verifier inputs: prompt features ⊕ hashed answer tokens ⊕ standardised answer stats ⊕ one-hot model."""
        one_hot = np.eye(len(self.models_))[np.asarray(models, dtype=np.intp)]
        return np.hstack([prompt_inputs, hashed, standardize(stats, self.answer_mean_, self.answer_scale_), one_hot])

    def _prompt_inputs(self, prompts: Sequence[str]) -> FloatMatrix:
        hashed, stats = prompt_blocks(prompts, self.params.hash_dims, self.params.tail_chars)
        return np.hstack([hashed, standardize(stats, self.prompt_mean_, self.prompt_scale_)])

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        prompts = [str(text) for text in features]
        inputs = self._prompt_inputs(prompts)
        quality = sigmoid(inputs @ self.prompt_coef_.T + self.prompt_intercept_)
        return quality.reshape(len(prompts), len(self.models_)), broadcast(self.cost_, len(prompts))

    def first_model(self) -> str:
        """The model that answers first."""
        self._check_fitted()
        return self.models_[int(self.pair_[0])]

    def verify(self, prompts: Sequence[str], answers: Sequence[str], model: str | None = None) -> FloatMatrix:
        """P(the answer is right) per (prompt, answer) by `model` (default: the cheap model). Without a trained
        verifier (no answer text in training), the prompt-only estimate for that model."""
        self._check_fitted()
        column = self.columns([model])[0] if model is not None else int(self.pair_[0])
        return self._verified(self._prompt_inputs(list(prompts)), prompts, answers, column)

    def _verified(
        self, inputs: FloatMatrix, prompts: Sequence[str], answers: Sequence[str], column: int
    ) -> FloatMatrix:
        if self.verifier_coef_.size == 0:
            return logistic_probability(inputs, self.prompt_coef_[column], float(self.prompt_intercept_[column]))
        hashed, stats = answer_blocks(list(prompts), list(answers), self.params.hash_dims)
        verifier_inputs = self._stack(inputs, hashed, stats, np.full(len(inputs), column))
        return logistic_probability(verifier_inputs, self.verifier_coef_, float(self.verifier_intercept_[0]))

    def strong_model(self) -> str:
        """The model asked when the first answer is doubted."""
        self._check_fitted()
        return self.models_[int(self.pair_[1])]

    def thresholds(self, prompts: Sequence[str], cost_weight: float) -> FloatMatrix:
        """Per prompt, the score the first answer must reach to be kept: P(strong right | prompt) − λ·cost(strong).

        The first answer is escalated when its score (`verify`) is below it: the strong model's expected gain
        is worth its cost. −inf (never escalate) when λ is infinite or the pair is one model."""
        self._check_fitted()
        if cost_weight < 0:
            raise RouterError(f"cost weight must be >= 0, got {cost_weight}")
        cheap, strong = (int(i) for i in self.pair_)
        if cheap == strong or np.isinf(cost_weight) or not len(prompts):
            return np.full(len(prompts), -np.inf)
        inputs = self._prompt_inputs(list(prompts))
        strong_right = logistic_probability(inputs, self.prompt_coef_[strong], float(self.prompt_intercept_[strong]))
        return np.asarray(strong_right - cost_weight * float(self.cost_[strong]), dtype=np.float64)

    def escalations(self, prompts: Sequence[str], answers: Sequence[str], cost_weight: float) -> np.ndarray:
        """Per prompt, whether to escalate: the cheap answer's `verify` score is below its `thresholds` value
        (P(strong right | prompt) − P(cheap answer right) > λ·cost(strong))."""
        needed = self.thresholds(prompts, cost_weight)
        if not np.isfinite(needed).any():
            return np.zeros(len(prompts), dtype=bool)
        return np.asarray(self.verify(prompts, answers) < needed, dtype=bool)

    def escalate(self, prompt: str, answer: str, cost_weight: float) -> str | None:
        """The model to ask next after the cheap model answered `answer`, or None to keep that answer."""
        if bool(self.escalations([prompt], [answer], cost_weight)[0]):
            return self.strong_model()
        return None

    def _check_fitted(self) -> None:
        if not self.models_:
            raise RouterError("cascade router is not fitted; call fit() or load a trained router")
