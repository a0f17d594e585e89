"""Outcome rows → the matrices a router trains on: prompts × models of quality, cost and sample weight.

Works for full-information data (every model per prompt) and for logged traffic (one model per prompt,
weighted by 1/propensity). Pure: takes an in-memory table, never reads files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features import schema

FloatMatrix = npt.NDArray[np.float64]


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
        )


def training_set(table: pa.Table, models: tuple[str, ...] | None = None, max_weight: float = 20.0) -> TrainingSet:
    """Pivot outcome rows into matrices; rows with a propensity weigh 1/propensity (capped at `max_weight`)."""
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
    shape = (len(prompts), len(names))
    quality, cost, weight = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    responses: list[list[str | None]] = [[None] * len(names) for _ in prompts]
    for row in rows:
        j = column.get(row[schema.MODEL])
        if j is not None:
            _place(row, prompt_ids[row[schema.PROMPT_ID]], j, (quality, cost, weight, responses), max_weight)
    return TrainingSet(
        prompt_ids=tuple(prompt_ids),
        prompts=tuple(prompts),
        models=names,
        quality=quality,
        cost=cost,
        weight=weight,
        responses=tuple(tuple(r) for r in responses),
    )


def _place(row: dict[str, Any], i: int, j: int, out: tuple[Any, ...], max_weight: float) -> None:
    quality, cost, weight, responses = out
    if row[schema.QUALITY] is not None:
        quality[i, j] = row[schema.QUALITY]
        propensity = row[schema.PROPENSITY]
        weight[i, j] = 1.0 if propensity is None else min(1.0 / propensity, max_weight)
    if row[schema.COST_USD] is not None:
        cost[i, j] = row[schema.COST_USD]
    responses[i][j] = row[schema.RESPONSE]
