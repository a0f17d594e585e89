"""Multi-layer perceptron router: one shared net maps (prompt features, model one-hot) to expected quality.

Trained with scikit-learn, predicted by a numpy forward pass over the saved weights (exact after load);
it never decides and never does I/O.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from routers.base import Features, Router, State
from routers.cost_model import broadcast, mean_costs
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize, unit_mean

LAYER_KEY = "layer{index}.{part}"
"""State names of the net's weights and biases, e.g. `layer0.weight`."""


class MlpParams(BaseModel):
    """Architecture, L2 penalty and the Adam optimiser's step size and epoch budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden_sizes: tuple[PositiveInt, ...] = Field(default=(64,), min_length=1)
    alpha: float = Field(default=1.0, ge=0.0)
    """L2 penalty on the weights (scikit-learn's `alpha`); sample weights are rescaled to mean 1 first."""
    learning_rate: float = Field(default=1e-3, gt=0.0)
    max_iter: int = Field(default=100, ge=1)
    """Epochs at most; training stops earlier when the loss stops improving."""


class MlpRouter(Router[MlpParams]):
    """Each known (prompt, model) outcome is one training row: standardised features ⊕ one-hot model."""

    family = "mlp"
    source = "RouterBench MLP predictive router (Hu et al., 2024, arXiv:2403.12031)"
    Params = MlpParams

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        super().__init__(params, seed=seed)
        self.layers_: list[tuple[FloatMatrix, FloatMatrix]] = []

    @classmethod
    def search_space(cls, trial: Any) -> MlpParams:
        layers = trial.suggest_int("layers", 1, 2)
        width = trial.suggest_int("width", 16, 256, log=True)
        return MlpParams(
            hidden_sizes=tuple(max(8, width // 2**i) for i in range(layers)),
            alpha=trial.suggest_float("alpha", 1e-5, 1.0, log=True),
            learning_rate=trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
            max_iter=trial.suggest_int("max_iter", 50, 300, step=50),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.mean_, self.scale_ = scaling(train.features)
        self.cost_ = mean_costs(train)
        rows, models = np.nonzero(train.known & (train.weight > 0))
        scaled = standardize(train.features[rows], self.mean_, self.scale_)
        inputs = np.hstack([scaled, self._one_hot(models)])
        self.layers_ = self._train(inputs, train.quality[rows, models], unit_mean(train.weight[rows, models]))

    def _train(
        self, inputs: FloatMatrix, targets: FloatMatrix, weights: FloatMatrix
    ) -> list[tuple[FloatMatrix, FloatMatrix]]:
        """Fit scikit-learn's net (Adam, ReLU) and keep only its weights and biases."""
        # Imported here: serving predicts with numpy alone and never loads scikit-learn.
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor
        from threadpoolctl import threadpool_limits

        net = MLPRegressor(
            hidden_layer_sizes=self.params.hidden_sizes,
            alpha=self.params.alpha,
            learning_rate_init=self.params.learning_rate,
            max_iter=self.params.max_iter,
            random_state=self.seed,
        )
        # Small mini-batch products run fastest (and repeatably) on one BLAS thread; max_iter is a budget.
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(inputs, targets, sample_weight=weights)
        return [
            (np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
            for w, b in zip(net.coefs_, net.intercepts_, strict=True)
        ]

    def _one_hot(self, models: np.ndarray) -> FloatMatrix:
        return np.asarray(np.eye(len(self.models_))[models], dtype=np.float64)

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        rows = len(features)
        first_weight, first_bias = self.layers_[0]
        width = first_weight.shape[0] - len(self.models_)
        # The first layer splits into a prompt part (computed once) and one row per candidate model.
        shared = standardize(features, self.mean_, self.scale_) @ first_weight[:width] + first_bias
        columns = [self._forward(shared + first_weight[width + j]) for j in range(len(self.models_))]
        quality = np.column_stack(columns) if columns else np.zeros((rows, 0))
        return np.clip(quality.reshape(rows, len(self.models_)), 0.0, 1.0), broadcast(self.cost_, rows)

    def _forward(self, first: FloatMatrix) -> FloatMatrix:
        """From the first layer's pre-activations to the output (ReLU hidden layers, identity output)."""
        hidden = np.maximum(first, 0.0)
        for weight, bias in self.layers_[1:-1]:
            hidden = np.maximum(hidden @ weight + bias, 0.0)
        last_weight, last_bias = self.layers_[-1]
        return np.asarray((hidden @ last_weight + last_bias)[:, 0], dtype=np.float64)

    def get_state(self) -> State:
        state = super().get_state()
        for index, (weight, bias) in enumerate(self.layers_):
            state[LAYER_KEY.format(index=index, part="weight")] = weight
            state[LAYER_KEY.format(index=index, part="bias")] = bias
        return state

    def set_state(self, state: State) -> None:
        layers = sum(1 for key in state if key.endswith(".weight"))
        self.layers_ = [
            (
                np.asarray(state[LAYER_KEY.format(index=i, part="weight")], dtype=np.float64),
                np.asarray(state[LAYER_KEY.format(index=i, part="bias")], dtype=np.float64),
            )
            for i in range(layers)
        ]
        super().set_state({k: v for k, v in state.items() if not k.startswith("layer")})
