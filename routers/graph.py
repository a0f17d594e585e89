"""GraphRouter (Feng et al. 2024): a heterogeneous GNN over the prompt–model outcome graph scores each edge.

A new prompt joins the graph through its k most similar training prompts; it never decides and never does I/O.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field

from routers.base import Features, Router, State
from routers.cost_model import broadcast, mean_costs, mean_qualities
from routers.dataset import FloatMatrix, TrainingSet
from routers.preprocessing import scaling, standardize, unit_rows
from routers.torch_state import generator, load_module_state, module_state

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
        self.head = torch.nn.Sequential(torch.nn.Linear(3 * dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, 1))
        self.bias = torch.nn.Parameter(torch.zeros(n_models))

    def forward(self, graph: Graph, rows: torch.Tensor) -> torch.Tensor:
        """Logits of (prompt node `rows` × every model)."""
        h = {PROMPT: torch.relu(self.encoder(graph.features)), MODEL: self.models}
        for conv in self.convs:
            out = conv(h, graph.edges, edge_weight_dict=graph.weights)
            h = {kind: h[kind] + torch.relu(out[kind]) if kind in out else h[kind] for kind in h}
        prompts = h[PROMPT][rows][:, None, :].expand(-1, len(self.bias), -1)
        models = h[MODEL][None, :, :].expand(len(rows), -1, -1)
        logits: torch.Tensor = self.head(torch.cat([prompts * models, prompts, models], dim=-1))
        return logits.squeeze(-1) + self.bias


def nearest(queries: FloatMatrix, points: FloatMatrix, k: int, skip_self: bool) -> tuple[IntArray, FloatMatrix]:
    """Indices (rows, k) of each query's most cosine-similar points, best first, and the similarities."""
    k = min(k, len(points) - int(skip_self))
    index, similarity = [], []
    for start in range(0, len(queries), BLOCK_ROWS):
        block = queries[start : start + BLOCK_ROWS] @ points.T
        if skip_self:
            block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        top = np.argsort(-block, axis=1, kind="stable")[:, :k]
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
