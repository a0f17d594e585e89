"""RouterDC (Chen et al. 2024): prompt and model embeddings trained with dual contrastive losses, calibrated.

Quality = a per-model logistic map of cosine similarity; cost is each model's mean. Never decides, no I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn.cluster import KMeans

from routers.base import Features, Router, State
from routers.calibration import fit_logistic, logit, sigmoid
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize, unit_mean
from routers.torch_state import load_module_state, module_state
from routers.torch_training import seeded_init, train_minibatches

NET_PREFIX = "net"


class DualContrastiveParams(BaseModel):
    """Encoder size, temperature, the two losses' balance and clusters, optimiser, calibration penalty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(default=256, ge=4)
    dim: int = Field(default=64, ge=2)
    """Size of the shared prompt/model embedding space (cosine similarity is taken there)."""
    temperature: float = Field(default=0.2, gt=0.0)
    clusters: int = Field(default=8, ge=2)
    """k-means clusters of the prompt features; prompts of one cluster are pulled together."""
    sample_weight: float = Field(default=0.5, ge=0.0)
    """Weight of the sample–sample loss next to the sample–LLM loss (RouterDC's λ)."""
    learning_rate: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-2, ge=0.0)
    epochs: int = Field(default=60, ge=1)
    batch_size: int = Field(default=64, ge=2)
    patience: int = Field(default=8, ge=1)
    """Epochs without a better validation loss before training stops (only when `valid` is given)."""
    calibration_penalty: float = Field(default=1e-3, ge=0.0)
    """Ridge penalty on each model's calibration slope (the fit's sample weights sum to 1)."""


class Cells(NamedTuple):
    """A prompts × models block as float32 tensors: features, quality (0 where unknown), weight, cluster."""

    features: torch.Tensor
    quality: torch.Tensor
    weight: torch.Tensor
    cluster: torch.Tensor


class DualEncoder(torch.nn.Module):
    """An MLP projecting prompt features, learned model embeddings and one reference ("a typical LLM")."""

    def __init__(self, n_features: int, n_models: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, dim)
        )
        self.models = torch.nn.Parameter(torch.empty(n_models, dim))
        self.reference = torch.nn.Parameter(torch.empty(1, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit prompt embeddings (n, dim) and cosines to [models..., reference] (n, models + 1)."""
        prompts = torch.nn.functional.normalize(self.encoder(x), dim=1)
        anchors = torch.nn.functional.normalize(torch.cat([self.models, self.reference]), dim=1)
        return prompts, prompts @ anchors.T


def sample_llm_loss(cosine: torch.Tensor, cells: Cells, temperature: float) -> torch.Tensor:
    """Per observed cell, weighted by quality q: pull the prompt toward the model, past the reference and
    every observed worse model (q); push it from the model below the reference (1 − q)."""
    s, s0 = cosine[:, :-1] / temperature, cosine[:, -1:] / temperature
    known = cells.weight > 0
    worse = known[:, None, :] & (cells.quality[:, None, :] < cells.quality[:, :, None])
    rivals = s[:, None, :].expand(-1, s.shape[1], -1).masked_fill(~worse, float("-inf"))
    pool = torch.cat([s[..., None], s0[..., None].expand(-1, s.shape[1], 1), rivals], dim=-1)
    pull = torch.logsumexp(pool, dim=-1) - s
    push = torch.nn.functional.softplus(s - s0)
    per_cell = cells.quality * pull + (1 - cells.quality) * push
    return (per_cell * cells.weight).sum() / cells.weight.sum().clamp_min(1e-12)


def sample_sample_loss(prompts: torch.Tensor, cluster: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each prompt against each same-cluster prompt of the batch, with other clusters' prompts as negatives."""
    z = prompts @ prompts.T / temperature
    same = cluster[:, None] == cluster[None, :]
    same.fill_diagonal_(False)
    negatives = torch.logsumexp(z.masked_fill(cluster[:, None] == cluster[None, :], float("-inf")), dim=1)
    if not bool(same.any()):
        return z.sum() * 0.0
    terms = torch.nn.functional.softplus(negatives[:, None] - z)
    return terms[same].mean()


class DualContrastiveRouter(Router[DualContrastiveParams]):
    """Routes by the calibrated similarity of a prompt's embedding to each model's embedding."""

    family = "dual_contrastive"
    source = "RouterDC (Chen et al., NeurIPS 2024, arXiv:2409.19886)"
    Params = DualContrastiveParams
    features = "semantic"

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        super().__init__(params, seed=seed)
        self.net_: DualEncoder | None = None

    @classmethod
    def search_space(cls, trial: Any) -> DualContrastiveParams:
        return DualContrastiveParams(
            hidden=trial.suggest_int("hidden", 32, 512, log=True),
            dim=trial.suggest_int("dim", 16, 128, log=True),
            temperature=trial.suggest_float("temperature", 0.05, 1.0, log=True),
            clusters=trial.suggest_int("clusters", 2, 32, log=True),
            sample_weight=trial.suggest_float("sample_weight", 0.0, 2.0),
            learning_rate=trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
            weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
            epochs=trial.suggest_int("epochs", 20, 200, step=20),
            calibration_penalty=trial.suggest_float("calibration_penalty", 1e-4, 1.0, log=True),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.mean_, self.scale_ = scaling(train.features)
        self.cost_ = mean_costs(train)
        net = DualEncoder(train.features.shape[1], len(train.models), self.params.hidden, self.params.dim)
        seeded_init(net, self.seed)
        inputs = self._inputs(train.features)
        # Never more clusters than distinct prompts (truncated embeddings of few-shot prompts often coincide).
        count = min(self.params.clusters, len(np.unique(inputs, axis=0)))
        labels = KMeans(count, random_state=self.seed, n_init=3).fit_predict(inputs)
        self.net_ = self._train(net, self._cells(train, labels), self._cells(valid, None))
        self.slope_, self.intercept_ = self._calibration(train, valid)

    def _calibration(self, train: TrainingSet, valid: TrainingSet | None) -> tuple[FloatMatrix, FloatMatrix]:
        """Per-model (slope, intercept) of the logistic map from margin to quality, on train and valid rows."""
        margins, qualities, weights = [], [], []
        for part in (train, valid):
            if part is not None and part.features is not None:
                margins.append(self._margin(part.features))
                qualities.append(part.quality)
                weights.append(np.where(part.known, part.weight, 0.0))
        margin, quality, weight = np.vstack(margins), np.vstack(qualities), np.vstack(weights)
        prior = mean_qualities(train)
        fits = [self._calibrate_model(margin[:, j], quality[:, j], weight[:, j], prior[j]) for j in range(len(prior))]
        return np.array([f[0] for f in fits]), np.array([f[1] for f in fits])

    def _calibrate_model(
        self, margin: FloatMatrix, quality: FloatMatrix, weight: FloatMatrix, prior: float
    ) -> tuple[float, float]:
        """Platt scaling of one model's margin on its observed rows; its base rate when it has none."""
        seen = weight > 0
        if not seen.any():
            return 0.0, logit(float(prior))
        return fit_logistic(margin[seen], quality[seen], weight[seen], ridge=self.params.calibration_penalty)

    def _inputs(self, features: Features) -> npt.NDArray[np.float32]:
        return np.asarray(standardize(features, self.mean_, self.scale_), dtype=np.float32)

    def _cells(self, data: TrainingSet | None, labels: npt.NDArray[Any] | None) -> Cells | None:
        """A set as tensors (cluster −1 when unknown), or None when it has nothing to learn from."""
        if data is None or data.features is None:
            return None
        weight = np.where(data.known, data.weight, 0.0)
        if weight.sum() <= 0:
            return None
        cluster = np.full(len(weight), -1) if labels is None else labels
        arrays = (self._inputs(data.features), np.nan_to_num(data.quality, nan=0.0), unit_mean(weight))
        x, quality, mass = (torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in arrays)
        return Cells(x, quality, mass, torch.from_numpy(np.asarray(cluster, dtype=np.int64)))

    def _loss(self, net: DualEncoder, cells: Cells) -> torch.Tensor:
        prompts, cosine = net(cells.features)
        loss = sample_llm_loss(cosine, cells, self.params.temperature)
        if self.params.sample_weight > 0 and bool((cells.cluster >= 0).all()):
            loss = loss + self.params.sample_weight * sample_sample_loss(
                prompts, cells.cluster, self.params.temperature
            )
        return loss

    def _train(self, net: DualEncoder, train: Cells | None, valid: Cells | None) -> DualEncoder:
        """AdamW over shuffled prompt batches, early-stopped on the validation loss."""
        assert train is not None

        def validation_loss() -> float:
            assert valid is not None
            return float(self._loss(net, valid))

        train_minibatches(
            net,
            len(train.features),
            lambda rows: self._loss(net, Cells(*(t[rows] for t in train))),
            None if valid is None else validation_loss,
            learning_rate=self.params.learning_rate,
            weight_decay=self.params.weight_decay,
            batch_size=self.params.batch_size,
            epochs=self.params.epochs,
            patience=self.params.patience,
            seed=self.seed + 1,
        )
        return net

    def _margin(self, features: Features) -> FloatMatrix:
        """Cosine to each model minus cosine to the reference embedding, per prompt."""
        assert self.net_ is not None
        self.net_.eval()
        with torch.no_grad():
            outputs: tuple[torch.Tensor, torch.Tensor] = self.net_(torch.from_numpy(self._inputs(features)))
        cosine = outputs[1]
        margin = np.asarray(cosine[:, :-1] - cosine[:, -1:], dtype=np.float64)
        return margin.reshape(len(features), len(self.models_))

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        logits = self._margin(features) * self.slope_ + self.intercept_
        return sigmoid(logits), broadcast(self.cost_, len(features))

    def get_state(self) -> State:
        assert self.net_ is not None
        return super().get_state() | module_state(self.net_, NET_PREFIX)

    def set_state(self, state: State) -> None:
        head = f"{NET_PREFIX}."
        super().set_state({k: v for k, v in state.items() if not k.startswith(head)})
        hidden, n_features = state[f"{head}encoder.0.weight"].shape
        n_models, dim = state[f"{head}models"].shape
        self.net_ = DualEncoder(n_features, n_models, hidden, dim)
        load_module_state(self.net_, state, NET_PREFIX)
        self.net_.eval()
