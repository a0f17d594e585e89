"""`routeiq_settings.limits`: how much the gateway accepts at once and how long it waits for an upstream.

A frozen pydantic model only; the limit middleware and the direct call path enforce it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

KIB = 1024
MIB = 1024 * KIB


class LimitSettings(BaseModel):
    """Backpressure, request size limits and upstream deadlines (None turns a deadline off)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_in_flight: int = Field(default=512, ge=1)
    """`/v1/*` requests (streams until their last byte) served at once; one more is answered 503 with Retry-After."""
    retry_after_seconds: int = Field(default=1, ge=0)
    """The `Retry-After` a 503 for too many requests in flight carries."""
    max_body_bytes: int = Field(default=4 * MIB, ge=1)
    """Largest request body (by Content-Length, or counted as a chunked body arrives); larger is a 413."""
    max_header_bytes: int = Field(default=32 * KIB, ge=1)
    """Largest sum of header name and value bytes; larger is a 431."""
    total_seconds: float | None = Field(default=600.0, gt=0.0)
    """Direct path: longest an upstream call may take from request to last byte; a miss is a 504 (or ends a
    started stream with an error event)."""
    first_byte_seconds: float | None = Field(default=300.0, gt=0.0)
    """Direct path: longest a stream may wait for the upstream's first event; a miss is a 504."""
    chunk_gap_seconds: float | None = Field(default=120.0, gt=0.0)
    """Direct path: longest a started stream may go without an event; a miss ends it with an error event."""
