"""`routeiq_settings.security`: what the operator allows the gateway's outbound calls to reach.

A frozen pydantic model; the checks themselves are `serving.security.ssrf`'s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serving.security.ssrf import Allowlist

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CorsSettings(BaseModel):
    """Cross-origin access for browser clients: off (preflights refused) unless origins are listed."""

    model_config = _FROZEN

    allow_origins: tuple[str, ...] = ()
    """Origins a browser may call from (e.g. `https://app.example.com`; `*` for any); empty: CORS off."""
    allow_methods: tuple[str, ...] = ("GET", "POST", "DELETE")
    """Methods a preflight may approve."""
    allow_headers: tuple[str, ...] = ("authorization", "content-type", "x-routeiq-cost-weight", "x-routeiq-session")
    """Request headers a preflight may approve."""
    expose_headers: tuple[str, ...] = ("x-routeiq-model", "x-routeiq-router-version", "x-routeiq-decision")
    """Response headers a browser script may read."""
    allow_credentials: bool = False
    """Let browsers send cookies and HTTP auth (never with `*`)."""
    max_age: int = Field(default=600, ge=0)
    """Seconds a browser may cache a preflight's answer."""

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*" and not origin.startswith(("https://", "http://")):
                raise ValueError(f"{origin!r} is not an origin; write scheme://host[:port], or * for any")
        return origins


class SecuritySettings(BaseModel):
    """Exceptions to the SSRF guard, who may read the API description, and cross-origin access."""

    model_config = _FROZEN

    upstream_allowlist: tuple[str, ...] = ()
    """Host names or CIDR networks (e.g. `127.0.0.0/8`, `vllm.internal`) a config `api_base` may reach although
    private or loopback, and over plain http; cloud metadata stays blocked, admin-API input never uses this."""

    @field_validator("upstream_allowlist")
    @classmethod
    def _parses(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        Allowlist.parse(entries)  # a typo is refused at load, not on the first request
        return entries

    api_docs: Literal["public", "operator", "off"] = "public"
    """`/openapi.json` and `/docs`: open to anyone, only to admin and operator keys, or not served at all."""
    cors: CorsSettings = CorsSettings()
    """Cross-origin (browser) access (table below); off by default."""

    def allowlist(self) -> Allowlist:
        """The parsed allow-list the guard checks against."""
        return Allowlist.parse(self.upstream_allowlist)
