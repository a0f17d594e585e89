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
    """Largest sum of header name and value bytes; larger is a 431. Trailers of a chunked body count against it
    too (over it: a 431 and the connection closed); they are never read as headers."""
    max_in_flight_per_key: int = Field(default=64, ge=0)
    """Requests of one API key (the master key counts as one) served at once, streams until their last byte; one
    more is answered 429 `too_many_in_flight` with Retry-After. 0: no per-key limit."""
    header_read_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    """Longest a connection may take to send a request's line and headers (from its first byte, or from the
    connection's start); a miss is a 408 `request_timeout` and the connection is closed."""
    body_read_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    """Longest the gateway waits for a request's whole body once its headers are in; a miss is a 408
    `request_timeout` and the connection is closed."""
    total_seconds: float | None = Field(default=600.0, gt=0.0)
    """Direct path: longest an upstream call may take from request to last byte; a miss is a 504 (or ends a
    started stream with an error event)."""
    first_byte_seconds: float | None = Field(default=300.0, gt=0.0)
    """Direct path: longest a stream may wait for the upstream's first event; a miss is a 504."""
    chunk_gap_seconds: float | None = Field(default=120.0, gt=0.0)
    """Direct path: longest a started stream may go without an event; a miss ends it with an error event."""


class BreakerSettings(BaseModel):
    """A circuit breaker per deployment name: after `failures` upstream failures in a row, from at least
    `min_callers` different callers, its calls are skipped (straight to a fallback, or 503) for
    `cooldown_seconds`; then trial calls decide whether it closes."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    enabled: bool = True
    """Off: every call goes to the deployment however often it failed."""
    failures: int = Field(default=5, ge=1)
    """Consecutive upstream failures (5xx, 429, timeouts, unreachable) that open the circuit; a 4xx the upstream
    gives the request itself, a request the gateway refuses and a client that leaves count for nothing."""
    min_callers: int = Field(default=2, ge=1, le=100)
    """Distinct callers (API key ids; the client address without keys) those failures must come from, and that
    failed trials must come from to reopen it: one caller's requests alone never open a circuit shared with
    others. 1: any caller's failures count (the breaker of one-tenant gateways)."""
    cooldown_seconds: float = Field(default=30.0, gt=0.0)
    """How long an open circuit skips the deployment before one trial call is let through."""


class FailoverSettings(BaseModel):
    """Retries of the same deployment and fallbacks to others when an upstream fails before answering.

    Only failures of the upstream count (unreachable, 5xx, 429, timeouts and deadlines, a stream that breaks
    before its first event); a 4xx the upstream returns for the request itself is passed on at once."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    retries: int = Field(default=0, ge=0, le=10)
    """Extra attempts on the same deployment before moving to its fallbacks (0: none)."""
    backoff_seconds: float = Field(default=0.1, ge=0.0)
    """Wait before the first retry; doubled for each further one, with ±50% jitter."""
    max_backoff_seconds: float = Field(default=2.0, ge=0.0)
    """Longest wait before a retry, including a 429's `Retry-After`; a longer `Retry-After` skips the retry."""
    fallbacks: dict[str, tuple[str, ...]] = {}
    """Model name → names to try in order when it fails (also read from LiteLLM's `router_settings.fallbacks`)."""
    default_fallbacks: tuple[str, ...] = ()
    """Names to try for a model without its own `fallbacks` entry."""
    breaker: BreakerSettings = BreakerSettings()
    """The per-deployment circuit breaker (table below)."""
