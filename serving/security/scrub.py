"""Secret scrubbing: API keys, bearer tokens, cloud key ids, JWTs and credential-named values become `[REDACTED]`
before text reaches an error body, a span, a log line or an audit entry.

String work and a logging filter only; it never decides what is recorded, and it holds no state of its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from serving.config import GatewayConfig

REDACTED: Final = "[REDACTED]"
MIN_KNOWN_SECRET_CHARS: Final = 8
"""Shorter configured values are not matched verbatim: replacing every `abc` would maul ordinary text."""
CREDENTIAL_PARAMS: Final = frozenset(
    {"api_key", "aws_secret_access_key", "aws_session_token", "azure_ad_token", "client_secret", "vertex_credentials"}
)
"""`litellm_params` keys whose values are credentials, registered as known secrets."""

_NAMES: Final = (
    r"(?:api[_-]?key|(?:proxy-)?authorization|(?:access|refresh|id|auth)[_-]?token|client[_-]?secret"
    r"|aws_secret_access_key|aws_session_token|master[_-]?key|passw(?:or)?d|secret)"
)
_NAME_INITIALS: Final = "[acimprs]"
"""A cheap look-ahead on the first letter of `_NAMES`: it keeps the alternation off most positions (3x faster)."""
_SCHEME: Final = r"(?:bearer|basic|token)"
_BARE: Final = r"[^\s&,;\"'}\\<>`]+"
_VALUE: Final = (
    r"\\\"(?:[^\"\\]|\\[^\"])*\\\""  # a JSON string inside a JSON string: \"...\"
    r"|\"(?:[^\"\\]|\\.)*\""
    r"|'(?:[^'\\]|\\.)*'"
    rf"|{_SCHEME}\s+{_BARE}"
    rf"|(?!{_SCHEME}\b){_BARE}"  # a scheme alone (`Bearer <key>` in a help text) is no secret
)
NAMED_VALUE: Final = re.compile(
    rf"(?i)(?P<name>(?<![a-z0-9])(?={_NAME_INITIALS}){_NAMES}\\?[\"']?\s*[:=]\s*)(?P<value>{_VALUE})",
)
"""`api_key=…`, `"api_key": "…"`, `x-api-key: …`, `Authorization: Bearer …`, in JSON, Python reprs, headers and
query strings; the name stays so a reader still sees which credential was there."""
_SHAPES: Final = (
    r"\b(?P<keep>(?i:bearer)\s+)[A-Za-z0-9._~+/-]{8,}=*",
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}",
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    r"\bAIza[0-9A-Za-z_-]{35}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
)
SHAPES: Final = re.compile(rf"(?=[bBsAeg])(?:{'|'.join(_SHAPES)})")
"""Secrets recognisable by shape alone, in one pass: bearer tokens, OpenAI/Anthropic `sk-…` keys, AWS access
key ids, JWTs, Google API keys, GitHub tokens. The look-ahead on their first letters makes it ~6x faster."""
SCRUBBED_LOGGERS: Final = (
    "routeiq",
    "routeiq.gateway",
    "routeiq.gateway.routing",
    "routeiq.gateway.poller",
    "routeiq.gateway.metrics",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "httpx",
)
"""Loggers that get the filter by name (created if need be), so it applies whatever is imported later."""
SCRUBBED_PREFIXES: Final = ("routeiq", "serving", "uvicorn", "LiteLLM", "litellm", "aiohttp", "httpx")
"""Any logger already existing under these names gets the filter too."""


def scrub(text: str) -> str:
    """`text` with every secret recognisable by name or shape replaced by `[REDACTED]`.

    What any code about to record text (an audit entry, a log line, a span attribute) must call; the
    gateway's `Scrubber` also removes the configured keys verbatim.
    """
    return SHAPES.sub(_redact_shape, NAMED_VALUE.sub(_redact_value, text))


def _redact_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[:2] if value.startswith('\\"') else value[:1] if value[:1] in "\"'" else ""
    return f"{match['name']}{quote}{REDACTED}{quote}"


def _redact_shape(match: re.Match[str]) -> str:
    return f"{match['keep'] or ''}{REDACTED}"


@dataclass(frozen=True, slots=True)
class Scrubber:
    """`scrub` plus the exact secrets this gateway was configured with (master key, deployment keys), which
    may have no recognisable shape at all."""

    known: re.Pattern[str] | None = None

    @classmethod
    def of(cls, secrets: Iterable[str | None]) -> Scrubber:
        """A scrubber for these exact values; the longest first, so one secret containing another goes whole."""
        kept = sorted({s for s in secrets if s and len(s) >= MIN_KNOWN_SECRET_CHARS}, key=len, reverse=True)
        return cls(re.compile("|".join(re.escape(s) for s in kept))) if kept else cls()

    @classmethod
    def for_config(cls, config: GatewayConfig) -> Scrubber:
        """The master key, every deployment's credentials (`CREDENTIAL_PARAMS`) and the artifact signing key."""
        found: list[str | None] = [config.master_key]
        signing = config.settings.routing.signing
        if signing is not None:
            found.append(signing.key)
        for deployment in config.deployments:
            params = deployment.litellm_params
            found.extend(params[key] for key in CREDENTIAL_PARAMS if isinstance(params.get(key), str))
        return cls.of(found)

    def scrub(self, text: str) -> str:
        """`text` without the known secrets (replaced first, before a pattern could leave a fragment of one)
        and without anything `scrub` recognises."""
        if self.known is not None:
            text = self.known.sub(REDACTED, text)
        return scrub(text)


class SecretFilter(logging.Filter):
    """Scrubs a record's message, arguments, traceback and stack before any handler formats it.

    A record with nothing to hide is left untouched. Otherwise string arguments are scrubbed in place (uvicorn's
    access formatter needs its argument tuple); when that is not enough (a secret split between the format
    string and an argument) the record is flattened into its scrubbed message.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_message(record, self.scrubber)
        if record.exc_info is not None:
            # The exception object still holds the secret: keep only its scrubbed text.
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.scrubber.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrubber.scrub(record.stack_info)
        return True


def _scrub_message(record: logging.LogRecord, scrubber: Scrubber) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit: the handler would report it; hide them anyway
        message = f"{record.msg} {record.args!r}"
    clean = scrubber.scrub(message)
    if clean == message:
        return
    record.msg = scrubber.scrub(str(record.msg))
    record.args = _scrub_args(record.args, scrubber)
    try:
        fits = record.getMessage() == clean
    except (TypeError, ValueError):
        fits = False
    if not fits:
        record.msg, record.args = clean, None


def _scrub_args(args: Any, scrubber: Scrubber) -> Any:
    if isinstance(args, tuple):
        return tuple(_scrub_arg(arg, scrubber) for arg in args)
    if isinstance(args, Mapping):
        return {key: _scrub_arg(value, scrubber) for key, value in args.items()}
    return args


def _scrub_arg(arg: object, scrubber: Scrubber) -> object:
    if arg is None or isinstance(arg, int | float):
        return arg
    return scrubber.scrub(str(arg))


@contextmanager
def scrubbing_logs(scrubber: Scrubber) -> Iterator[SecretFilter]:
    """Attach one `SecretFilter` to the gateway's, uvicorn's and LiteLLM's loggers and their handlers while
    the gateway runs, and detach it after: a second gateway in the same process (tests) does not stack filters.

    Loggers and handlers both: a logger's filter sees only records logged on it, a handler's also those that
    propagate from child loggers created later. LiteLLM's own filters stay; this one runs beside them.
    """
    secret_filter = SecretFilter(scrubber)
    targets = _filterers()
    for target in targets:
        target.addFilter(secret_filter)
    try:
        yield secret_filter
    finally:
        for target in targets:
            target.removeFilter(secret_filter)


def _filterers() -> list[logging.Filterer]:
    existing = {name for name in logging.root.manager.loggerDict if name.startswith(SCRUBBED_PREFIXES)}
    loggers = [logging.getLogger(name) for name in sorted(existing.union(SCRUBBED_LOGGERS))]
    handlers = {id(h): h for logger in loggers for h in logger.handlers}
    return [*loggers, *handlers.values()]
