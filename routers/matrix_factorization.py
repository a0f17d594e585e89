"""Matrix-factorisation router (RouteLLM's MF): quality = σ(w·(P x ⊙ v_m) + b_m), learned from known cells.

Learns quality only (cost is each model's mean observed cost); it never decides and never does I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router, State
from routers.cost_model import broadcast, mean_costs
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize
from routers.torch_state import load_module_state, module_state
from routers.torch_training import cell_loss, prior_logits, seeded_init, train_minibatches

NET_PREFIX = "net"
"""State names of the torch module's weights, e.g. `net.projection.weight`."""


class Cells(NamedTuple):
    """A prompts × models block as float32 tensors; unknown quality is NaN with weight 0."""

    features: torch.Tensor
    quality: torch.Tensor
    weight: torch.Tensor


class MatrixFactorizationParams(BaseModel):
    """Latent size, Adam step and L2 penalty, and the epoch budget with early stopping on `valid`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dim: int = Field(default=64, ge=2)
    """Size of the latent space shared by projected prompts and model vectors."""
    learning_rate: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-2, ge=0.0)
    """Decoupled L2 (AdamW) on every weight; sample weights are self-normalised per batch."""
    epochs: int = Field(default=100, ge=1)
    batch_size: int = Field(default=128, ge=1)
    """Prompts per step; every known model outcome of those prompts enters the loss."""
    patience: int = Field(default=10, ge=1)
    """Epochs without a better validation loss before training stops (only when `valid` is given)."""


class FactorizationNet(torch.nn.Module):
    """Logits of every (prompt, model): w·(P x ⊙ v_m / ‖v_m‖) + b_m."""

    def __init__(self, n_features: int, n_models: int, dim: int) -> None:
        super().__init__()
        self.projection = torch.nn.Linear(n_features, dim, bias=False)
        self.models = torch.nn.Parameter(torch.empty(n_models, dim))
        self.classifier = torch.nn.Linear(dim, 1, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(n_models))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prompts = self.projection(x)
        models = torch.nn.functional.normalize(self.models, dim=1)
        logits: torch.Tensor = self.classifier(prompts[:, None, :] * models[None, :, :])
        return logits.squeeze(-1) + self.bias


class MatrixFactorizationRouter(Router[MatrixFactorizationParams]):
    """Prompt features (standardised) are projected into the latent space of learned per-model vectors."""

    family = "matrix_factorization"
    source = "RouteLLM matrix factorisation router (Ong et al., 2024, arXiv:2406.18665)"
    Params = MatrixFactorizationParams
    features = "semantic"

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        super().__init__(params, seed=seed)
        self.net_: FactorizationNet | None = None

    @classmethod
    def search_space(cls, trial: Any) -> MatrixFactorizationParams:
        return MatrixFactorizationParams(
            dim=trial.suggest_int("dim", 8, 128, log=True),
            learning_rate=trial.suggest_float("learning_rate", 3e-4, 3e-2, log=True),
            weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
            epochs=trial.suggest_int("epochs", 20, 200, step=20),
            batch_size=trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.mean_, self.scale_ = scaling(train.features)
        self.cost_ = mean_costs(train)
        net = FactorizationNet(train.features.shape[1], len(train.models), self.params.dim)
        seeded_init(net, self.seed)
        with torch.no_grad():
            net.bias.copy_(prior_logits(train))
        self.net_ = self._train(net, self._tensors(train), self._tensors(valid))

    def _tensors(self, data: TrainingSet | None) -> Cells | None:
        """(features, quality, weight) as float32 tensors, or None when there is nothing to learn from."""
        if data is None or data.features is None:
            return None
        weight = np.where(data.known, data.weight, 0.0)
        if weight.sum() <= 0:
            return None
        x = standardize(data.features, self.mean_, self.scale_)
        return Cells(*(torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in (x, data.quality, weight)))

    def _train(self, net: FactorizationNet, train: Cells | None, valid: Cells | None) -> FactorizationNet:
        """AdamW over shuffled prompt batches, early-stopped on the validation loss."""
        assert train is not None

        def validation_loss() -> float:
            assert valid is not None
            return float(cell_loss(net(valid.features), valid.quality, valid.weight))

        train_minibatches(
            net,
            len(train.features),
            lambda rows: cell_loss(net(train.features[rows]), train.quality[rows], train.weight[rows]),
            None if valid is None else validation_loss,
            learning_rate=self.params.learning_rate,
            weight_decay=self.params.weight_decay,
            batch_size=self.params.batch_size,
            epochs=self.params.epochs,
            patience=self.params.patience,
            seed=self.seed + 1,
        )
        return net

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        assert self.net_ is not None
        x = torch.from_numpy(np.asarray(standardize(features, self.mean_, self.scale_), dtype=np.float32))
        self.net_.eval()
        with torch.no_grad():
            quality = torch.sigmoid(self.net_(x)).numpy().astype(np.float64)
        return quality.reshape(len(features), len(self.models_)), broadcast(self.cost_, len(features))

    def get_state(self) -> State:
        assert self.net_ is not None
        return super().get_state() | module_state(self.net_, NET_PREFIX)

    def set_state(self, state: State) -> None:
        head = f"{NET_PREFIX}."
        super().set_state({k: v for k, v in state.items() if not k.startswith(head)})
        n_models, dim = state[f"{head}models"].shape
        self.net_ = FactorizationNet(state[f"{head}projection.weight"].shape[1], n_models, dim)
        load_module_state(self.net_, state, NET_PREFIX)
        self.net_.eval()
