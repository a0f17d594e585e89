"""The client address the policy sees: the socket peer, or, from a trusted proxy, the right-most address of
`X-Forwarded-For` that is not itself a trusted proxy. Pure; never trusts the header from anyone else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_FOR = "x-forwarded-for"


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The peer unless it is in `trusted`; then the right-most hop of `forwarded_for` (comma-separated) outside
    `trusted` (all inside: the left-most). A hop that is not an IP address is returned as it is, so a rule
    on client addresses reports it instead of skipping past it."""
    if peer is None or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0]


def _trusted(text: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)
