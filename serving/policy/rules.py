"""The `routeiq_settings.policy` section: ordered allow/deny rules and their match conditions, validated at
config load (CIDRs, times and time zones are parsed there, so a typo stops the start). Settings only;
evaluating them is `serving.policy.engine`'s job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from serving.access.keys import Role

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

Effect = Literal["allow", "deny"]
ALLOW: Effect = "allow"
DENY: Effect = "deny"
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""In `datetime.weekday()` order."""
MINUTES_PER_DAY = 24 * 60
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")

Patterns = tuple[str, ...] | None
"""A condition's globs (fnmatch: `*`, `?`, `[...]`, case-sensitive); None: the condition is not checked."""


def minute_of(clock: str) -> int:
    """`HH:MM` (00:00 to 24:00) as minutes since midnight."""
    found = _CLOCK.match(clock)
    if found is None:
        raise ValueError(f"{clock!r} is not a time of day; write HH:MM, 00:00 to 24:00")
    minutes = int(found.group(1)) * 60 + int(found.group(2))
    if minutes > MINUTES_PER_DAY:
        raise ValueError(f"{clock!r} is past 24:00")
    return minutes


class TimeWindow(BaseModel):
    """When a rule applies: on `days`, from `start` (included) to `end` (excluded), wall-clock time in `timezone`.
    A window whose `end` is before its `start` crosses midnight and belongs to the day it starts on."""

    model_config = _FROZEN

    days: tuple[Day, ...] = Field(default=DAYS, min_length=1)
    """Days of the week (`mon` … `sun`) the window starts on."""
    start: str = "00:00"
    """Start, `HH:MM`."""
    end: str = "24:00"
    """End, `HH:MM` (`24:00`: midnight at the end of the day); before `start`: the window crosses midnight."""
    timezone: str = "UTC"
    """IANA time zone of `start` and `end` (e.g. `Europe/Paris`; daylight saving time is followed)."""
    _zone: ZoneInfo = PrivateAttr(default_factory=lambda: ZoneInfo("UTC"))

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        minute_of(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Paris") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start_minute == MINUTES_PER_DAY:
            raise ValueError("start 24:00 is the next day's 00:00; write 00:00")
        if self.start_minute == self.end_minute:
            raise ValueError(f"start equals end ({self.start}), an empty window; omit both for the whole day")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._zone = ZoneInfo(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def start_minute(self) -> int:
        return minute_of(self.start)

    @property
    def end_minute(self) -> int:
        return minute_of(self.end)


class Rule(BaseModel):
    """One rule: its conditions (all optional, all must hold) and what happens when they do. A list condition
    holds when any entry matches; a rule without conditions matches every request."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=128)
    """Unique name, shown in denials, the audit log and decision traces."""
    effect: Effect
    """`allow` or `deny` a request that matches."""
    message: str | None = Field(default=None, min_length=1, max_length=500)
    """What a denied client is told (with the rule's name); None: a generic message naming the rule."""
    keys: tuple[str, ...] | None = Field(default=None, min_length=1)
    """Key ids (`key-…`), `master` (the master key) or `anonymous` (an open gateway's callers)."""
    teams: tuple[str, ...] | None = Field(default=None, min_length=1)
    """Teams of virtual keys; the master key and anonymous callers have none, so never match."""
    roles: tuple[Role, ...] | None = Field(default=None, min_length=1)
    """Key roles (`admin`, `operator`, `user`); the master key is `admin`, anonymous callers match none."""
    models: Patterns = Field(default=None, min_length=1)
    """Globs of the requested model (`gpt-4*`, the virtual model `auto`); requests without a model (model list,
    feedback, admin routes) never match."""
    routes: Patterns = Field(default=None, min_length=1)
    """Globs of the request path (`/admin/*`, `/v1/embeddings`); `/_health/*` and `/metrics` are never checked."""
    methods: tuple[str, ...] | None = Field(default=None, min_length=1)
    """HTTP methods (`GET`, `POST`, …; any case)."""
    headers: dict[str, str | None] | None = Field(default=None, min_length=1)
    """Header name (any case) → glob its value must match (repeated headers are joined with `, `); a header
    that is absent does not match; `null` instead of a glob: the header must be absent."""
    client_ips: tuple[IPvAnyNetwork, ...] | None = Field(default=None, min_length=1)
    """CIDR networks of the client address (see `trusted_proxies`); an address that cannot be read is an
    evaluation error (see `fail_closed`)."""
    time: TimeWindow | None = None
    """When the rule applies (table below); None: at any time."""

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if methods is None else tuple(m.upper() for m in methods)

    @field_validator("headers")
    @classmethod
    def _lower(cls, headers: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if headers is None:
            return None
        lowered = {name.lower(): pattern for name, pattern in headers.items()}
        bad = [name for name in lowered if not _HEADER_NAME.match(name)]
        if bad or len(lowered) != len(headers):
            raise ValueError(f"header names must be distinct HTTP tokens (any case); check {bad or list(headers)}")
        return lowered


class PolicySettings(BaseModel):
    """Rules evaluated before each request (except `/_health/*` and `/metrics`) in order; the first whose
    conditions all hold decides, and `default` decides when none does."""

    model_config = _FROZEN

    rules: tuple[Rule, ...] = ()
    """The rules, in order (table below)."""
    path: Path | None = None
    """A YAML file holding the rules instead (a list, or a mapping with `rules:`; relative to the working
    directory; read at start; `os.environ/` references are not resolved there); set both: refused."""
    default: Effect = ALLOW
    """What happens to a request no rule matches: `allow` (the gateway's behaviour without rules) or `deny`."""
    fail_closed: bool = True
    """A rule that cannot be evaluated (e.g. an unreadable client address) denies with 403; off: it is logged
    and skipped."""
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    """CIDRs of proxies whose `X-Forwarded-For` is believed: from a peer in them, the client address is the
    right-most forwarded address outside them; otherwise (and by default) it is the socket peer."""

    @model_validator(mode="before")
    @classmethod
    def _rules_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("path") is None:
            return data
        if data.get("rules"):
            raise ValueError("set either `rules` or `path` (a YAML file of rules), not both")
        return {**data, "rules": load_rules(Path(data["path"]))}

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            if rule.name in seen:
                raise ValueError(f"rules[{index}]: the name {rule.name!r} is used twice; rule names must be unique")
            seen.add(rule.name)
        return rules


def load_rules(path: Path) -> tuple[Rule, ...]:
    """The rules in the YAML file `path`; errors name the file, the rule's index and the key to fix."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read the policy rules file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"the policy rules file {path} is not valid YAML: {exc}") from exc
    entries = raw.get("rules") if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise ValueError(f"the policy rules file {path} must hold a list of rules (or a mapping with `rules:`)")
    rules = []
    for index, entry in enumerate(entries):
        try:
            rules.append(Rule.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{path}: rules[{index}].{where}: {first['msg']}") from exc
    return tuple(rules)
