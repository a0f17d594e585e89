"""Telemetry settings: where spans go (OTLP-JSON files, optionally an OTLP/HTTP collector) and queue bounds.

Pure configuration; it never creates directories, exporters or threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIB = 1024 * 1024


class TelemetrySettings(BaseModel):
    """How the gateway records spans; the defaults write rotating OTLP-JSON files under `runs/traces`."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    enabled: bool = True
    """Off: the tracer is a no-op, nothing is written and every counter stays 0."""
    directory: Path = Path("runs/traces")
    """OTLP-JSON lines files (`spans-*.jsonl`) are written here; the pipelines ingest them."""
    otlp_endpoint: str | None = None
    """Also export over OTLP/HTTP (protobuf). A bare `http://host:4318` gets `/v1/traces` appended."""
    max_queue_size: int = Field(default=65536, gt=0)
    """Spans waiting per destination; past it a span is dropped and counted, never blocked on."""
    max_export_batch_size: int = Field(default=512, gt=0)
    """Spans written or sent per export call."""
    export_interval_seconds: float = Field(default=0.5, gt=0.0)
    """Longest a span waits in the queue before it is exported."""
    max_file_bytes: int = Field(default=64 * MIB, gt=0)
    """A new file is started before a line would take the current one past this size."""
    max_attribute_chars: int = Field(default=4096, ge=64)
    """Longest string a span attribute keeps (each string of a sequence too); longer ones are clipped and end in
    `…[clipped from N chars]`. A captured prompt is clipped too; its hash is of the whole prompt."""
    capture_prompts: bool = False
    """Record the prompt text on spans (`routeiq.prompt.text`); the prompt hash is always recorded."""
    service_name: str = Field(default="routeiq-gateway", min_length=1)
    """The `service.name` resource attribute of every span."""

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> Self:
        if self.max_export_batch_size > self.max_queue_size:
            raise ValueError(
                f"max_export_batch_size ({self.max_export_batch_size}) is larger than max_queue_size "
                f"({self.max_queue_size}); lower the batch size or raise the queue size."
            )
        return self
