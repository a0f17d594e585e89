"""GraphRouter (Feng et al. 2024): a heterogeneous GNN over the prompt–model outcome graph scores each edge.

A new prompt joins the graph through its k most similar training prompts; it never decides and never does I/O.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router, State
from routers.cost_model import broadcast, mean_costs
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize, unit_rows
from routers.torch_state import generator, load_module_state, module_state
from routers.torch_training import (
    cell_loss,
    prior_logits,
    seeded_init,
    single_thread,
    train_with_early_stopping,
)

with warnings.catch_warnings():
    # torch_geometric 2.8 scripts a few helpers with torch.jit.script, which torch 2.13 deprecates.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
    from torch_geometric.nn import GraphConv, HeteroConv  # type: ignore[import-untyped, unused-ignore]

NET_PREFIX = "net"
PROMPT, MODEL = "prompt", "model"
EdgeType = tuple[str, str, str]
SUCCEEDED: EdgeType = (PROMPT, "succeeded", MODEL)
FAILED: EdgeType = (PROMPT, "failed", MODEL)
SUCCEEDED_ON: EdgeType = (MODEL, "succeeded_on", PROMPT)
FAILED_ON: EdgeType = (MODEL, "failed_on", PROMPT)
SIMILAR: EdgeType = (PROMPT, "similar", PROMPT)
BLOCK_ROWS = 1024
"""Prompts searched per block, bounding the (prompts × training prompts) similarity matrix in memory."""
IntArray = npt.NDArray[np.int64]


class GraphParams(BaseModel):
    """Width and depth of the GNN, the prompt neighbourhood, and the optimiser with its epoch budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dim: int = Field(default=32, ge=2)
    layers: int = Field(default=2, ge=1, le=4)
    """Message-passing rounds; 2 lets a new prompt see its neighbours' outcome edges."""
    neighbours: int = Field(default=10, ge=1)
    """Similar training prompts each prompt (training or new) is linked to."""
    folds: int = Field(default=4, ge=2)
    """Each epoch the training prompts are split into folds; each fold in turn hides its own outcome edges
    and is scored on them, exactly as a new prompt would be."""
    learning_rate: float = Field(default=3e-3, gt=0.0)
    weight_decay: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=40, ge=1)
    patience: int = Field(default=6, ge=1)
    """Epochs without a better validation loss before training stops (only when `valid` is given)."""


class Graph(NamedTuple):
    """One forward pass: features of every prompt node, edges (2, E) and weights per relation."""

    features: torch.Tensor
    edges: dict[EdgeType, torch.Tensor]
    weights: dict[EdgeType, torch.Tensor]


class GraphNet(torch.nn.Module):
    """Prompt encoder + learned model nodes → HeteroConv layers → an MLP scoring (prompt, model) edges."""

    def __init__(self, n_features: int, n_models: int, dim: int, layers: int) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(n_features, dim)
        self.models = torch.nn.Parameter(torch.empty(n_models, dim))
        relations = (SUCCEEDED, FAILED, SUCCEEDED_ON, FAILED_ON, SIMILAR)
        self.convs = torch.nn.ModuleList(
            HeteroConv({r: GraphConv((dim, dim), dim, aggr="mean") for r in relations}, aggr="sum")
            for _ in range(layers)
        )
        self.head = torch.nn.Sequential(torch.nn.Linear(3 * dim, dim), torch.nn.ReLU())
        self.score = torch.nn.Linear(dim, 1)
        self.bias = torch.nn.Parameter(torch.zeros(n_models))

    def forward(self, graph: Graph, rows: torch.Tensor) -> torch.Tensor:
        """Logits of (prompt node `rows` × every model)."""
        h = {PROMPT: torch.relu(self.encoder(graph.features)), MODEL: self.models}
        for conv in self.convs:
            out = conv(h, graph.edges, edge_weight_dict=graph.weights)
            h = {kind: h[kind] + torch.relu(out[kind]) if kind in out else h[kind] for kind in h}
        prompts = h[PROMPT][rows][:, None, :].expand(-1, len(self.bias), -1)
        models = h[MODEL][None, :, :].expand(len(rows), -1, -1)
        logits: torch.Tensor = self.score(self.head(torch.cat([prompts * models, prompts, models], dim=-1)))
        return logits.squeeze(-1) + self.bias


def nearest(queries: FloatMatrix, points: FloatMatrix, k: int, skip_self: bool) -> tuple[IntArray, FloatMatrix]:
    """Indices (rows, k) of each query's most cosine-similar points, best first, and the similarities."""
    k = min(k, len(points) - int(skip_self))
    index, similarity = [], []
    for start in range(0, len(queries), BLOCK_ROWS):
        block = queries[start : start + BLOCK_ROWS] @ points.T
        if skip_self:
            block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k] if 0 < k < block.shape[1] else np.argsort(-block)[:, :k]
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        index.append(top)
        similarity.append(np.take_along_axis(block, top, axis=1))
    return np.vstack(index).astype(np.int64), np.vstack(similarity)


def outcome_edges(quality: FloatMatrix, context: npt.NDArray[np.bool_]) -> dict[EdgeType, tuple[IntArray, FloatMatrix]]:
    """Success and failure edges (weighted q and 1 − q) of the known cells of the context prompts."""
    seen = ~np.isnan(quality) & context[:, None]
    rows, models = np.nonzero(seen)
    q = quality[rows, models]
    good, bad = q > 0, q < 1
    return {
        SUCCEEDED: (np.stack([rows[good], models[good]]), q[good]),
        FAILED: (np.stack([rows[bad], models[bad]]), 1.0 - q[bad]),
    }


class GraphRouter(Router[GraphParams]):
    """Training prompts, their outcome edges and their similarity links form the graph new prompts join."""

    family = "graph"
    source = "GraphRouter (Feng et al., 2024, arXiv:2410.03834)"
    Params = GraphParams
    features = "semantic"

    def __init__(self, params: BaseModel | None = None, *, seed: int = 0) -> None:
        super().__init__(params, seed=seed)
        self.net_: GraphNet | None = None

    @classmethod
    def search_space(cls, trial: Any) -> GraphParams:
        return GraphParams(
            dim=trial.suggest_int("dim", 8, 64, log=True),
            layers=trial.suggest_int("layers", 1, 3),
            neighbours=trial.suggest_int("neighbours", 3, 30, log=True),
            learning_rate=trial.suggest_float("learning_rate", 3e-4, 3e-2, log=True),
            weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
            epochs=trial.suggest_int("epochs", 10, 100, step=10),
        )

    def _fit(self, train: TrainingSet, valid: TrainingSet | None) -> None:
        assert train.features is not None
        self.mean_, self.scale_ = scaling(train.features)
        self.cost_ = mean_costs(train)
        self.inputs_ = self._inputs(train.features)
        self.quality_ = np.where(train.known & (train.weight > 0), train.quality, np.nan)
        net = GraphNet(self.inputs_.shape[1], len(train.models), self.params.dim, self.params.layers)
        seeded_init(net, self.seed)
        with torch.no_grad():
            # Start from each model's base rate: the edge head adds nothing until it has learned something.
            net.score.weight.zero_()
            net.bias.copy_(prior_logits(train))
        self.net_ = self._train(net, train, valid)

    def _inputs(self, features: Features) -> npt.NDArray[np.float32]:
        return np.asarray(standardize(features, self.mean_, self.scale_), dtype=np.float32)

    def _train(self, net: GraphNet, train: TrainingSet, valid: TrainingSet | None) -> GraphNet:
        """AdamW over folds of prompts; keeps the weights of the best validation epoch."""
        points = unit_rows(self.inputs_.astype(np.float64))
        spare = -(-self.params.neighbours * self.params.folds // (self.params.folds - 1)) + 4
        links = nearest(points, points, spare, True)
        self.neighbours_, self.similarity_ = (
            links[0][:, : self.params.neighbours],
            links[1][:, : self.params.neighbours],
        )
        quality = torch.from_numpy(self.quality_.astype(np.float32))
        weight = torch.from_numpy(np.where(np.isnan(self.quality_), 0.0, train.weight).astype(np.float32))
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=self.params.learning_rate, weight_decay=self.params.weight_decay
        )
        rng = generator(self.seed + 1)

        def run_epoch() -> None:
            for fold in torch.tensor_split(torch.randperm(len(points), generator=rng), self.params.folds):
                graph = self._fold_graph(fold.numpy(), links)
                optimizer.zero_grad()
                torch.autograd.backward(cell_loss(net(graph, fold), quality[fold], weight[fold]))
                optimizer.step()

        with single_thread():
            loss = self._validation(net, valid)
            train_with_early_stopping(net, run_epoch, loss, self.params.epochs, self.params.patience)
        return net

    def _fold_graph(self, fold: IntArray, links: tuple[IntArray, FloatMatrix]) -> Graph:
        """The training graph with `fold`'s outcome edges hidden; every prompt links to k context prompts."""
        context = np.ones(len(self.inputs_), dtype=bool)
        context[fold] = False
        index, similarity = links
        usable = context[index]
        keep = usable & (np.cumsum(usable, axis=1) <= self.params.neighbours)
        dst, column = np.nonzero(keep)
        similar = (index[dst, column], dst.astype(np.int64), similarity[dst, column])
        return build_graph(self.inputs_, outcome_edges(self.quality_, context), similar)

    def _validation(self, net: GraphNet, valid: TrainingSet | None) -> Callable[[], float] | None:
        """Loss of a net on the validation prompts scored as new prompts, or None without usable rows."""
        if valid is None or valid.features is None:
            return None
        weight = np.where(valid.known, valid.weight, 0.0)
        if weight.sum() <= 0:
            return None
        graph, rows = self._query_graph(valid.features)
        quality, mass = (torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in (valid.quality, weight))

        def loss() -> float:
            return float(cell_loss(net(graph, rows), quality, mass))

        return loss

    def _query_graph(self, features: Features) -> tuple[Graph, torch.Tensor]:
        """New prompts joined to the full training graph through their nearest training prompts, and their rows."""
        new, base = self._inputs(features), len(self.inputs_)
        index, similarity = nearest(
            unit_rows(new.astype(np.float64)), unit_rows(self.inputs_.astype(np.float64)), self.params.neighbours, False
        )
        train_rows = np.repeat(np.arange(base, dtype=np.int64), self.neighbours_.shape[1])
        new_rows = base + np.repeat(np.arange(len(new), dtype=np.int64), index.shape[1])
        similar = (
            np.concatenate([self.neighbours_.ravel(), index.ravel()]),
            np.concatenate([train_rows, new_rows]),
            np.concatenate([self.similarity_.ravel(), similarity.ravel()]),
        )
        outcomes = outcome_edges(self.quality_, np.ones(base, dtype=bool))
        graph = build_graph(np.vstack([self.inputs_, new]), outcomes, similar)
        return graph, torch.arange(base, base + len(new))

    def _predict(self, features: Features) -> tuple[FloatMatrix, FloatMatrix]:
        assert self.net_ is not None
        rows = len(features)
        quality = np.zeros((0, len(self.models_)))
        if rows:
            graph, new = self._query_graph(features)
            self.net_.eval()
            with torch.no_grad():
                quality = torch.sigmoid(self.net_(graph, new)).numpy().astype(np.float64)
        return quality.reshape(rows, len(self.models_)), broadcast(self.cost_, rows)

    def get_state(self) -> State:
        assert self.net_ is not None
        return super().get_state() | module_state(self.net_, NET_PREFIX)

    def set_state(self, state: State) -> None:
        head = f"{NET_PREFIX}."
        super().set_state({k: v for k, v in state.items() if not k.startswith(head)})
        n_models, dim = state[f"{head}models"].shape
        layers = len({k.split(".")[2] for k in state if k.startswith(f"{head}convs.")})
        self.net_ = GraphNet(state[f"{head}encoder.weight"].shape[1], n_models, dim, layers)
        load_module_state(self.net_, state, NET_PREFIX)
        self.net_.eval()


def build_graph(
    features: npt.NDArray[np.float32],
    outcomes: dict[EdgeType, tuple[IntArray, FloatMatrix]],
    similar: tuple[IntArray, IntArray, FloatMatrix],
) -> Graph:
    """Tensors of one forward pass: outcome edges both ways, similarity links weighted by cosine (≥ 0)."""
    edges: dict[EdgeType, torch.Tensor] = {}
    weights: dict[EdgeType, torch.Tensor] = {}
    reverse = {SUCCEEDED: SUCCEEDED_ON, FAILED: FAILED_ON}
    for relation, (pairs, weight) in outcomes.items():
        w = torch.from_numpy(np.asarray(weight, dtype=np.float32))
        edges[relation], weights[relation] = torch.from_numpy(pairs), w
        edges[reverse[relation]], weights[reverse[relation]] = torch.from_numpy(pairs[::-1].copy()), w
    src, dst, similarity = similar
    edges[SIMILAR] = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    weights[SIMILAR] = torch.from_numpy(np.maximum(similarity, 0.0).astype(np.float32))
    return Graph(torch.from_numpy(features), edges, weights)
