"""Outcome rows → the matrices a router trains on: prompts × models of quality, cost and sample weight, and,
for logged traffic, every logged request as its own event (what off-policy estimation needs).

Works for full-information data (every model per prompt) and for logged traffic (one model per request,
weighted by 1/propensity; a prompt sent several times averages its observations per model). Pure: takes an
in-memory table, never reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features import schema

FloatMatrix = npt.NDArray[np.float64]
IntVector = npt.NDArray[np.intp]

MAX_PROPENSITY_WEIGHT = 20.0
"""Default cap on a logged outcome's training weight 1/propensity (1: no weighting)."""


@dataclass(frozen=True)
class LoggedEvents:
    """One entry per logged request (an outcome row with a propensity): the row of its prompt in the
    TrainingSet, the column of the model the logging policy chose, what was observed, and the exact
    probability the policy had of choosing it. Repeated prompts are separate events."""

    rows: IntVector
    actions: IntVector
    quality: FloatMatrix
    cost: FloatMatrix
    propensity: FloatMatrix

    @classmethod
    def empty(cls) -> LoggedEvents:
        none = np.zeros(0)
        return cls(np.zeros(0, np.intp), np.zeros(0, np.intp), none, none.copy(), none.copy())

    @property
    def size(self) -> int:
        return int(self.rows.size)

    def subset(self, rows: IntVector, prompts: int) -> LoggedEvents:
        """The events of prompts `rows` (indices into `prompts` prompts), renumbered to their new positions."""
        position = np.full(prompts, -1, np.intp)
        position[rows] = np.arange(rows.size)
        keep = position[self.rows] >= 0 if self.size else np.zeros(0, bool)
        return LoggedEvents(
            rows=position[self.rows[keep]],
            actions=self.actions[keep],
            quality=self.quality[keep],
            cost=self.cost[keep],
            propensity=self.propensity[keep],
        )


@dataclass(frozen=True)
class TrainingSet:
    """Aligned on (prompt, model). Unknown outcomes are NaN with weight 0."""

    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    models: tuple[str, ...]
    quality: FloatMatrix
    cost: FloatMatrix
    weight: FloatMatrix
    responses: tuple[tuple[str | None, ...], ...] = ()
    features: npt.NDArray[np.float32] | None = None
    events: LoggedEvents = field(default_factory=LoggedEvents.empty)
    """Every logged request with its propensity (none for full-information data)."""

    def __post_init__(self) -> None:
        shape = (len(self.prompt_ids), len(self.models))
        for name in ("quality", "cost", "weight"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape (prompts, models) = {shape}")

    @property
    def known(self) -> npt.NDArray[np.bool_]:
        """Where a quality was observed."""
        return ~np.isnan(self.quality)

    def with_features(self, features: npt.NDArray[np.float32]) -> TrainingSet:
        if features.shape[0] != len(self.prompt_ids):
            raise ValueError(f"features have {features.shape[0]} rows for {len(self.prompt_ids)} prompts")
        return TrainingSet(**{**self.__dict__, "features": features})

    def subset(self, rows: npt.NDArray[np.intp] | list[int]) -> TrainingSet:
        idx = np.asarray(rows, dtype=np.intp)
        return TrainingSet(
            prompt_ids=tuple(self.prompt_ids[i] for i in idx),
            prompts=tuple(self.prompts[i] for i in idx),
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
            weight=self.weight[idx],
            responses=tuple(self.responses[i] for i in idx) if self.responses else (),
            features=None if self.features is None else self.features[idx],
            events=self.events.subset(idx, len(self.prompt_ids)),
        )


def training_set(
    table: pa.Table, models: tuple[str, ...] | None = None, max_weight: float = MAX_PROPENSITY_WEIGHT
) -> TrainingSet:
    """Pivot outcome rows into matrices: a cell is the mean of its observations, weighing the mean of their
    1/propensity (capped at `max_weight`; 1 without a propensity). Rows with a propensity are also kept, one
    by one and uncapped, as the logged events."""
    rows = table.select(
        [
            schema.PROMPT_ID,
            schema.PROMPT,
            schema.MODEL,
            schema.QUALITY,
            schema.COST_USD,
            schema.PROPENSITY,
            schema.RESPONSE,
        ]
    ).to_pylist()
    prompt_ids: dict[str, int] = {}
    prompts: list[str] = []
    for row in rows:
        if row[schema.PROMPT_ID] not in prompt_ids:
            prompt_ids[row[schema.PROMPT_ID]] = len(prompts)
            prompts.append(row[schema.PROMPT])
    names = models or tuple(sorted({row[schema.MODEL] for row in rows}))
    column = {m: j for j, m in enumerate(names)}
    cells = _Cells((len(prompts), len(names)), len(prompts))
    for row in rows:
        j = column.get(row[schema.MODEL])
        if j is not None:
            cells.add(row, prompt_ids[row[schema.PROMPT_ID]], j, max_weight)
    return TrainingSet(
        prompt_ids=tuple(prompt_ids),
        prompts=tuple(prompts),
        models=names,
        quality=cells.mean(cells.quality, cells.quality_count),
        cost=cells.mean(cells.cost, cells.cost_count),
        weight=cells.mean(cells.weight, cells.quality_count, empty=0.0),
        responses=tuple(tuple(r) for r in cells.responses),
        events=cells.events(),
    )


class _Cells:
    """Running sums per (prompt, model) cell, and the logged events, while `training_set` reads the rows."""

    def __init__(self, shape: tuple[int, int], prompts: int) -> None:
        self.quality, self.cost, self.weight = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.quality_count, self.cost_count = np.zeros(shape), np.zeros(shape)
        self.responses: list[list[str | None]] = [[None] * shape[1] for _ in range(prompts)]
        self._events: list[tuple[int, int, float, float, float]] = []

    def add(self, row: dict[str, Any], i: int, j: int, max_weight: float) -> None:
        quality, cost, propensity = row[schema.QUALITY], row[schema.COST_USD], row[schema.PROPENSITY]
        if quality is not None:
            self.quality[i, j] += quality
            self.quality_count[i, j] += 1
            self.weight[i, j] += 1.0 if propensity is None else min(1.0 / propensity, max_weight)
            if propensity is not None:
                self._events.append((i, j, quality, 0.0 if cost is None else cost, propensity))
        if cost is not None:
            self.cost[i, j] += cost
            self.cost_count[i, j] += 1
        if row[schema.RESPONSE] is not None or self.responses[i][j] is None:
            self.responses[i][j] = row[schema.RESPONSE]

    @staticmethod
    def mean(total: FloatMatrix, count: FloatMatrix, empty: float = np.nan) -> FloatMatrix:
        found = count > 0
        out = np.full(total.shape, empty)
        out[found] = total[found] / count[found]
        return out

    def events(self) -> LoggedEvents:
        if not self._events:
            return LoggedEvents.empty()
        rows, actions, quality, cost, propensity = (np.asarray(c) for c in zip(*self._events, strict=True))
        return LoggedEvents(
            rows=rows.astype(np.intp),
            actions=actions.astype(np.intp),
            quality=quality.astype(np.float64),
            cost=cost.astype(np.float64),
            propensity=propensity.astype(np.float64),
        )
