"""The SSRF guard: one check for every outbound URL that comes from config or admin input.

`check_url` parses a URL the way aiohttp (the sender) does, resolves its host and checks every address;
`GuardedResolver` repeats the address check inside aiohttp at connect time, so a DNS answer that changes after
the config check (rebinding) cannot reach loopback, a private network or cloud metadata. No network I/O here
beyond the injected `lookup`, and no state beyond what a caller constructs.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Final
from urllib.parse import urlsplit

from aiohttp import ClientSession, TCPConnector, TraceConfig, TraceRequestStartParams
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AddressLookup = Callable[[str, int], Sequence[str]]
"""`(host, port) -> addresses`, like `socket.getaddrinfo`; injectable so tests need no DNS."""

SCHEMES: Final = ("http", "https")
METADATA: Final = tuple(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
"""Cloud metadata endpoints (AWS/GCP/Azure, ECS, AWS IPv6, Alibaba): never reachable, allow-list or not."""
CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")
_NUMERIC_PART: Final = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_HOSTNAME: Final = re.compile(
    r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
)
_IPV4_BITS: Final = 32


class UnsafeURLError(ValueError):
    """A URL the guard refuses; the message says which rule and what to change. Config loading turns it
    into a GatewayConfigError; at connect time `BlockedAddressError` carries the same text."""


class BlockedAddressError(OSError):
    """Raised by `GuardedResolver`: an OSError, so aiohttp reports it as a connection (DNS) error."""


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks the operator vouches for: they may be private or loopback and use plain http."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """`entries` as CIDR networks (`127.0.0.0/8`, a bare address is a /32 or /128) or host names."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
                continue
            except ValueError:
                pass
            host = _normal_host(entry)
            if not _HOSTNAME.fullmatch(host) or _inet_aton(host) is not None:
                raise ValueError(f"{entry!r} is neither a CIDR network (e.g. 127.0.0.0/8) nor a host name")
            hosts.add(host)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether `address` (reached through `host`) is vouched for by name or by network."""
        return _normal_host(host) in self.hosts or any(address in network for network in self.networks)


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed the guard, with the addresses it was checked at: connect to those, not to a new
    lookup of `host` (aiohttp does so through `GuardedResolver`)."""

    url: URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...] = field(default=())

    @property
    def address(self) -> IPAddress:
        """The first checked address."""
        return self.addresses[0]


def system_lookup(host: str, port: int) -> list[str]:
    """The C resolver's addresses for `host` (numeric forms like `2130706433` are decoded by it too)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, allowlist: Allowlist | None = None, lookup: AddressLookup = system_lookup) -> CheckedURL:
    """`url` parsed, resolved and checked; UnsafeURLError says why not.

    Config-file upstreams pass the operator's allow-list; admin-API input passes none, so it can never reach
    a private, loopback or metadata address, nor use plain http.
    """
    allowed = allowlist or Allowlist()
    parsed = _parse(url)
    host, port = _normal_host(parsed.host or ""), parsed.port or 0
    addresses = _addresses(host, port, lookup)
    check_addresses(host, addresses, allowed)
    if parsed.scheme != "https" and not all(allowed.allows(host, _unwrap(a)) for a in addresses):
        raise UnsafeURLError(
            f"{url} uses plain http; use https, or list {host!r} in routeiq_settings.security.upstream_allowlist"
        )
    return CheckedURL(parsed, host, port, addresses)


def check_addresses(host: str, addresses: Sequence[IPAddress], allowlist: Allowlist) -> None:
    """Every address of `host` must be public or allow-listed, and none cloud metadata; else UnsafeURLError."""
    if not addresses:
        raise UnsafeURLError(f"{host!r} resolved to no address")
    for address in addresses:
        reason = blocked_reason(_unwrap(address))
        if reason is None or (reason != "cloud metadata" and allowlist.allows(host, _unwrap(address))):
            continue
        shown = f"{address} ({_unwrap(address)})" if _unwrap(address) != address else str(address)
        raise UnsafeURLError(f"{host!r} resolves to {shown}, which is {reason}; {_remedy(host, address, reason)}")


def _remedy(host: str, address: IPAddress, reason: str) -> str:
    """What the operator can change: nothing for metadata, else the allow-list entry that would admit it."""
    if reason == "cloud metadata":
        return "outbound calls may never reach it"
    entry = host if _literal(host) is None else str(ipaddress.ip_network(_unwrap(address)))
    return f"if this upstream is yours, add {entry!r} to routeiq_settings.security.upstream_allowlist"


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` (already unwrapped) must not be called, or None when it is a public address."""
    checks: tuple[tuple[str, bool], ...] = (
        ("cloud metadata", address in METADATA),
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (CGNAT) address space", address in CGNAT),
        ("a local-use NAT64 prefix", address in NAT64_LOCAL),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver with the guard applied to every answer, at connect time.

    aiohttp connects to exactly the addresses returned here, so what is checked is what is called. IP-literal
    hosts never reach a resolver in aiohttp (and non-canonical numeric forms are refused by it); the config
    check covers those, as they cannot change.
    """

    def __init__(self, allowlist: Allowlist | None = None, lookup: AddressLookup = system_lookup) -> None:
        self._allowlist = allowlist or Allowlist()
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of `host`; BlockedAddressError when any of them is refused."""
        answers = await asyncio.get_running_loop().run_in_executor(None, self._lookup, host, port)
        try:
            addresses = [_address(a) for a in answers]
            check_addresses(host, addresses, self._allowlist)
        except UnsafeURLError as exc:
            raise BlockedAddressError(errno.EACCES, str(exc)) from exc
        wanted = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family)
        return [_result(host, a, port) for a in addresses if wanted in (None, a.version)]

    async def close(self) -> None:
        """Nothing to release: lookups run on the loop's default executor."""


def guarded_session(allowlist: Allowlist) -> ClientSession:
    """An aiohttp session for callers that may follow redirects (LiteLLM's transport): names are checked by
    `GuardedResolver` when connecting, and IP-literal hosts, which aiohttp never resolves, before each request,
    so every hop of a redirect chain passes the guard."""
    resolver = GuardedResolver(allowlist)

    async def check_literal(_: ClientSession, __: SimpleNamespace, params: TraceRequestStartParams) -> None:
        host = params.url.host or ""
        literal = _literal(host.strip("[]"))
        if literal is not None:
            try:
                check_addresses(host, (literal,), allowlist)
            except UnsafeURLError as exc:
                raise BlockedAddressError(errno.EACCES, str(exc)) from exc

    tracing = TraceConfig()
    tracing.on_request_start.append(check_literal)
    return ClientSession(connector=TCPConnector(resolver=resolver), trace_configs=[tracing])


def _result(host: str, address: IPAddress, port: int) -> ResolveResult:
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return ResolveResult(
        hostname=host, host=str(address), port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
    )


def _parse(url: str) -> URL:
    """`url` as aiohttp will read it; refuses what could make a reader and the sender disagree on the host."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise UnsafeURLError(f"{url!r} is not a valid URL ({exc})") from exc
    if parsed.scheme not in SCHEMES:
        raise UnsafeURLError(f"{url!r} has scheme {parsed.scheme!r}; only https (or allow-listed http) is allowed")
    if not parsed.host:
        raise UnsafeURLError(f"{url!r} has no host; write scheme://host[:port]/path")
    # Also an empty `@` that yarl drops: any userinfo means the URL was written to mislead a reader.
    if "@" in urlsplit(url).netloc or parsed.user is not None or parsed.password is not None:
        raise UnsafeURLError(f"{url!r} carries user info before '@'; remove it (put keys in api_key)")
    return parsed


def _addresses(host: str, port: int, lookup: AddressLookup) -> tuple[IPAddress, ...]:
    """The literal address `host` spells (in any form inet_aton accepts), else what `lookup` answers."""
    literal = _literal(host)
    if literal is not None:
        return (literal,)
    try:
        return tuple(_address(a) for a in lookup(host, port))
    except OSError as exc:
        raise UnsafeURLError(f"{host!r} cannot be resolved ({exc}); check the host name and DNS") from exc


def _literal(host: str) -> IPAddress | None:
    try:
        return _address(host)
    except ValueError:
        return _inet_aton(host)


def _address(text: str) -> IPAddress:
    """An address from a resolver or URL; an IPv6 zone (`%eth0`) is dropped, it does not change the class."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """`host` read as inet_aton reads it (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1` are 127.0.0.1),
    or None when it is not a numeric host at all. An out-of-range numeric host is refused, not resolved."""
    parts = host.split(".")
    if len(parts) > 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    try:
        values = [
            int(p, 16) if p[:2].lower() == "0x" and len(p) > 2 else int(p, 8 if p[0] == "0" else 10) for p in parts
        ]
    except ValueError:
        values = [-1]  # "08", "0x": not a number to inet_aton either
    *head, last = values
    bits = _IPV4_BITS - 8 * len(head)
    if not values or min(values) < 0 or any(v > 255 for v in head) or last >= 1 << bits:
        raise UnsafeURLError(f"{host!r} is a malformed numeric IPv4 address; write a host name or a.b.c.d")
    return ipaddress.IPv4Address(sum(v << (24 - 8 * i) for i, v in enumerate(head)) + last)


def _unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4, Teredo), else `address`."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo is not None else address


def _normal_host(host: str) -> str:
    """Lower case without brackets or the root dot, as resolvers compare names."""
    return host.strip().strip("[]").lower().removesuffix(".")
