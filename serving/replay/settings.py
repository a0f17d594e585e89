"""Settings of the replay provider: the outcomes file, the latency model and the fault knobs.

Pure configuration and reading the latency file; it never loads outcomes or starts a server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serving.replay.exceptions import ReplaySetupError

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
"""A probability per request in [0, 1]."""

YAML_SUFFIXES = (".yaml", ".yml")


class Latency(BaseModel):
    """Latency of one model: time to first token plus a time per output token, in milliseconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_ms: float = Field(default=0.0, ge=0.0)
    per_token_ms: float = Field(default=0.0, ge=0.0)


class LatencyModel(BaseModel):
    """A default latency, per-model overrides, and a jitter fraction applied to both parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: Latency = Latency()
    models: dict[str, Latency] = Field(default_factory=dict)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)
    """Each delay is scaled by a seeded uniform factor in [1 − jitter, 1 + jitter]."""

    def for_model(self, model: str) -> Latency:
        """The override for `model` when there is one, else the default."""
        return self.models.get(model, self.default)


class ReplaySettings(BaseModel):
    """Everything the replay server needs; latency and every fault rate default to 0 (benchmark mode).

    The defaults are also those of `routeiq replay-provider` and of docs/replay-provider.md (a test compares)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcomes: Path
    latency: LatencyModel = LatencyModel()
    seed: int = 0
    """Seeds the one RNG (kept on app.state) that draws jitter and faults."""
    error_rate: Rate = 0.0
    rate_limit_rate: Rate = 0.0
    retry_after_seconds: int = Field(default=1, ge=0)
    stall_rate: Rate = 0.0
    stall_seconds: float = Field(default=30.0, ge=0.0)
    """How long a stall lasts when `stall_rate` fires: long enough to trip a client's first-byte timeout."""
    broken_stream_rate: Rate = 0.0

    @staticmethod
    def latency_from_file(path: Path) -> LatencyModel:
        """Read a latency model from YAML (.yaml/.yml) or JSON (any other suffix)."""
        try:
            text = path.read_text(encoding="utf-8")
            data: Any = yaml.safe_load(text) if path.suffix.lower() in YAML_SUFFIXES else json.loads(text)
            return LatencyModel.model_validate(data if data is not None else {})
        except (OSError, ValueError, yaml.YAMLError) as exc:
            # ValidationError and JSONDecodeError are ValueErrors; say which file and the expected keys.
            detail = str(exc) if not isinstance(exc, ValidationError) else exc.errors(include_url=False)
            raise ReplaySetupError(
                f"latency file {path} is not usable ({detail}); it must be a YAML or JSON mapping with keys "
                "`default: {ttft_ms, per_token_ms}`, `models: {<model>: {ttft_ms, per_token_ms}}`, `jitter`"
            ) from exc
