"""Transformer router (RouteLLM's fine-tuned-LM router, with the bundled MiniLM): the last encoder layers and a
head are fine-tuned to predict each model's P(quality = 1). It never decides, does no I/O, and saves only
the trained parameters; the frozen rest is rebuilt from the installed package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from routers import minilm
from routers.base import Features, Router, RouterError, State
from routers.calibration import logit
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.torch_state import PREFIX_SEPARATOR, generator, load_module_state, module_state

TRAINED = "trained"
"""State prefix of the fine-tuned parameters (top encoder layers and head)."""
VERSION_KEY = "encoder_version"
HEAD_INIT_STD = 0.02


class TransformerParams(BaseModel):
    """How much of MiniLM is fine-tuned, on how many tokens, and the AdamW schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trainable_layers: int = Field(default=1, ge=0, le=6)
    """Top encoder layers fine-tuned with the head; the rest stay as shipped (0 = head only)."""
    max_seq_length: int = Field(default=64, ge=16, le=512)
    """Tokens read from the *end* of each prompt."""
    epochs: int = Field(default=2, ge=1, le=50)
    batch_size: int = Field(default=32, ge=1)
    head_learning_rate: float = Field(default=1e-2, gt=0.0)
    encoder_learning_rate: float = Field(default=1e-4, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)


class TransformerRouter(Router[TransformerParams]):
    """quality_j(x) = σ(head_j(mean-pool(MiniLM(x)))); cost is each model's mean observed cost."""

    family = "transformer"
    source = "RouteLLM BERT / causal-LM classifier routers (Ong et al., 2024), on the bundled MiniLM"
    Params = TransformerParams
    features = "text"

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        super().__init__(params, seed=seed)
        self.trained_: State = {}
        self._network: tuple[Any, int, minilm.QualityHead, Any] | None = None

    @classmethod
    def search_space(cls, trial: Any) -> TransformerParams:
        return TransformerParams(
            trainable_layers=trial.suggest_int("trainable_layers", 0, 2),
            max_seq_length=trial.suggest_categorical("max_seq_length", [48, 64, 96, 128]),
            epochs=trial.suggest_int("epochs", 1, 4),
            head_learning_rate=trial.suggest_float("head_learning_rate", 3e-4, 1e-2, log=True),
            encoder_learning_rate=trial.suggest_float("encoder_learning_rate", 1e-5, 3e-4, log=True),
            weight_decay=trial.suggest_float("weight_decay", 1e-4, 0.1, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        self.cost_ = mean_costs(train)
        self.encoder_version_ = _encode(minilm.package_version())
        encoder, frozen, head, tokenizer = self._build()
        self._init_head(head, mean_qualities(train))
        ids, mask = minilm.tokenize(tokenizer, train.prompts)
        observed = train.known & (train.weight > 0)
        targets = torch.from_numpy(np.where(observed, train.quality, 0.0).astype(np.float32))
        weights = torch.from_numpy(np.where(observed, train.weight, 0.0).astype(np.float32))
        with minilm.one_thread():
            self._train(head, (minilm.bottom(encoder, frozen, ids, mask), mask, targets, weights))
        head.eval()
        self.trained_ = module_state(head, TRAINED)
        self._network = (encoder, frozen, head, tokenizer)

    def _build(self) -> tuple[Any, int, minilm.QualityHead, Any]:
        encoder = minilm.load_encoder()
        frozen, top = minilm.split(encoder, self.params.trainable_layers)
        head = minilm.QualityHead(top, encoder.config.hidden_size, len(self.models_))
        return encoder, frozen, head, minilm.load_tokenizer(self.params.max_seq_length)

    def _init_head(self, head: minilm.QualityHead, mean_quality: FloatMatrix) -> None:
        """Start from each model's mean quality (bias) and a small seeded weight: an untrained head routes
        like the best single model."""
        with torch.no_grad():
            head.head.weight.normal_(0.0, HEAD_INIT_STD, generator=generator(self.seed))
            head.head.bias.copy_(torch.tensor([logit(float(q)) for q in mean_quality], dtype=torch.float32))

    def _train(self, head: minilm.QualityHead, data: tuple[torch.Tensor, ...]) -> None:
        """AdamW on the weighted binary cross-entropy of known cells; unknown cells weigh 0."""
        hidden, mask, targets, weights = data
        groups = [{"params": list(head.head.parameters()), "lr": self.params.head_learning_rate}]
        if self.params.trainable_layers:
            groups.append({"params": list(head.layers.parameters()), "lr": self.params.encoder_learning_rate})
        optimizer = torch.optim.AdamW(groups, weight_decay=self.params.weight_decay)
        shuffle = generator(self.seed + 1)
        for _ in range(self.params.epochs):
            order = torch.randperm(len(hidden), generator=shuffle)
            for batch in torch.split(order, self.params.batch_size):
                w = weights[batch]
                if float(w.sum()) <= 0:
                    continue
                logits = head(hidden[batch], mask[batch])
                losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[batch], reduction="none")
                loss = (losses * w).sum() / w.sum()
                optimizer.zero_grad()
                torch.autograd.backward(loss)
                optimizer.step()

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        encoder, frozen, head, tokenizer = self._ready()
        prompts = [str(text) for text in features]
        chunks = []
        with torch.no_grad():
            for start in range(0, len(prompts), self.params.batch_size):
                ids, mask = minilm.tokenize(tokenizer, prompts[start : start + self.params.batch_size])
                chunks.append(torch.sigmoid(head(minilm.bottom(encoder, frozen, ids, mask), mask)))
        quality = torch.cat(chunks).numpy().astype(np.float64) if chunks else np.zeros((0, len(self.models_)))
        return quality, broadcast(self.cost_, len(prompts))

    def _ready(self) -> tuple[Any, int, minilm.QualityHead, Any]:
        """The network, rebuilt from the package and the trained parameters on first use after loading."""
        if self._network is None:
            _check_version(self.encoder_version_)
            network = self._build()
            load_module_state(network[2], self.trained_, TRAINED)
            network[2].eval()
            self._network = network
        return self._network

    def get_state(self) -> State:
        return super().get_state() | self.trained_

    def set_state(self, state: State) -> None:
        head = f"{TRAINED}{PREFIX_SEPARATOR}"
        _check_version(state.get(VERSION_KEY, np.zeros(0, dtype=np.uint8)))
        self.trained_ = {k: v for k, v in state.items() if k.startswith(head)}
        super().set_state({k: v for k, v in state.items() if not k.startswith(head)})
        self._network = None


def _encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8).copy()


def _check_version(stored: np.ndarray) -> None:
    trained_with, installed = bytes(np.asarray(stored, dtype=np.uint8)).decode(), minilm.package_version()
    if not trained_with:
        raise RouterError(f"the trained state records no {minilm.PACKAGE} version; retrain the router")
    if trained_with != installed:
        raise RouterError(
            f"this transformer router was fine-tuned on {minilm.PACKAGE} {trained_with} but {installed} is "
            f"installed; install {minilm.PACKAGE}=={trained_with} or retrain the router"
        )
