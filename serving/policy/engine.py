"""Evaluating the policy: a pure function from the rules and one request's context to a decision with a trace.

No I/O, no clock and no web framework here: the caller passes the time and the client address it resolved.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from serving.policy.rules import ALLOW, DAYS, DENY, Effect, PolicySettings, Rule, TimeWindow

log = logging.getLogger("routeiq.policy")

MATCHED = "ok"
MISSED = "no"


class PolicyEvaluationError(ValueError):
    """A condition cannot be decided for this request (e.g. its client address is not an IP address)."""


@dataclass(frozen=True)
class RequestContext:
    """What the rules may look at: who calls, what for, from where, and when (`now` must be time zone aware)."""

    actor: str
    """A key id, `master` or `anonymous`."""
    team: str | None
    role: str | None
    model: str | None
    """The requested model; None on routes without one (model list, feedback, admin routes)."""
    route: str
    method: str
    headers: Mapping[str, str]
    """Lower-case names; repeated headers joined with `, `."""
    client_ip: str | None
    """As resolved by `serving.policy.client_ip` (not yet parsed: a bad one is an evaluation error)."""
    now: datetime


@dataclass(frozen=True)
class PolicyDecision:
    """The outcome: the deciding rule's name (None: `default` decided), and one trace line per rule evaluated,
    naming each condition checked and whether it held (`ok`/`no`), never the request's values."""

    effect: Effect
    rule: str | None
    trace: tuple[str, ...]
    message: str | None = None
    """The deciding rule's `message`."""
    error: str | None = None
    """Why the deciding rule could not be evaluated (fail closed)."""

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW


Check = Callable[[RequestContext], bool]


def evaluate(policy: PolicySettings, context: RequestContext) -> PolicyDecision:
    """The first rule whose conditions all hold decides; none does: `policy.default`. A rule that raises
    `PolicyEvaluationError` denies when `policy.fail_closed`, else is logged and skipped."""
    trace: list[str] = []
    for rule in policy.rules:
        checked: list[str] = []
        try:
            held = _holds(rule, context, checked)
        except PolicyEvaluationError as exc:
            trace.append(_line(rule.name, checked))
            if policy.fail_closed:
                return PolicyDecision(DENY, rule.name, tuple(trace), rule.message, str(exc))
            log.warning("policy rule %r skipped, it cannot be evaluated: %s", rule.name, exc)
            continue
        if held:
            trace.append(_line(rule.name, [*checked, rule.effect]))
            return PolicyDecision(rule.effect, rule.name, tuple(trace), rule.message)
        trace.append(_line(rule.name, checked))
    trace.append(f"default: {policy.default}")
    return PolicyDecision(policy.default, None, tuple(trace))


def _line(name: str, parts: list[str]) -> str:
    return f"{name}: {', '.join(parts) or 'no conditions'}"


def _holds(rule: Rule, context: RequestContext, checked: list[str]) -> bool:
    """Whether every condition of `rule` holds, stopping at the first that does not; `checked` collects
    `<condition> ok|no|error (why)` for each condition looked at."""
    for name, check in _conditions(rule):
        try:
            held = check(context)
        except PolicyEvaluationError as exc:
            checked.append(f"{name} error ({exc})")
            raise
        checked.append(f"{name} {MATCHED if held else MISSED}")
        if not held:
            return False
    return True


def _conditions(rule: Rule) -> Iterator[tuple[str, Check]]:
    """The rule's set conditions, cheapest first."""
    if (keys := rule.keys) is not None:
        yield "keys", lambda c: c.actor in keys
    if (teams := rule.teams) is not None:
        yield "teams", lambda c: c.team is not None and c.team in teams
    if (roles := rule.roles) is not None:
        yield "roles", lambda c: c.role is not None and c.role in roles
    if (methods := rule.methods) is not None:
        yield "methods", lambda c: c.method.upper() in methods
    if (routes := rule.routes) is not None:
        yield "routes", lambda c: _any_glob(c.route, routes)
    if (models := rule.models) is not None:
        yield "models", lambda c: c.model is not None and _any_glob(c.model, models)
    if (headers := rule.headers) is not None:
        yield "headers", lambda c: _headers_match(c.headers, headers)
    if (networks := rule.client_ips) is not None:
        yield "client_ips", lambda c: any(_address(c.client_ip) in net for net in networks)
    if (window := rule.time) is not None:
        yield "time", lambda c: in_window(window, c.now)


def _any_glob(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def _headers_match(headers: Mapping[str, str], wanted: Mapping[str, str | None]) -> bool:
    """Every named header matches its glob (`None`: is absent)."""
    for name, pattern in wanted.items():
        value = headers.get(name)
        if pattern is None:
            if value is not None:
                return False
        elif value is None or not fnmatchcase(value, pattern):
            return False
    return True


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client address; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) counts as its IPv4 address."""
    if text is None:
        raise PolicyEvaluationError("the client address is unknown")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise PolicyEvaluationError(f"the client address {text[:64]!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_window(window: TimeWindow, now: datetime) -> bool:
    """Whether `now` (time zone aware) falls in `window`; the part of a window crossing midnight that lies
    after midnight belongs to the previous day."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise PolicyEvaluationError("the time of the request has no time zone")
    local = now.astimezone(window.zone)
    minute = local.hour * 60 + local.minute
    start, end = window.start_minute, window.end_minute
    if start < end:
        day = local if start <= minute < end else None
    elif minute >= start:
        day = local
    elif minute < end:
        day = local - timedelta(days=1)
    else:
        day = None
    return day is not None and DAYS[day.weekday()] in window.days
