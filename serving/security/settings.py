"""`routeiq_settings.security`: what the operator allows the gateway's outbound calls to reach.

A frozen pydantic model; the checks themselves are `serving.security.ssrf`'s.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from serving.security.ssrf import Allowlist


class SecuritySettings(BaseModel):
    """Exceptions to the SSRF guard, for upstreams the operator runs on loopback or a private network."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    upstream_allowlist: tuple[str, ...] = ()
    """Host names or CIDR networks (e.g. `127.0.0.0/8`, `vllm.internal`) a config `api_base` may reach although
    private or loopback, and over plain http; cloud metadata stays blocked, admin-API input never uses this."""

    @field_validator("upstream_allowlist")
    @classmethod
    def _parses(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        Allowlist.parse(entries)  # a typo is refused at load, not on the first request
        return entries

    def allowlist(self) -> Allowlist:
        """The parsed allow-list the guard checks against."""
        return Allowlist.parse(self.upstream_allowlist)
