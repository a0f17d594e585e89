"""Durations as people write them in params.yaml and on the command line (`90`, `30m`, `6h`, `1d`), and back.

Parsing and formatting only.
"""

from __future__ import annotations

import re
from typing import Final

UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION: Final = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*", re.IGNORECASE)
NO_SCHEDULE: Final = ("off", "none", "never")


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like `90`, `90s`, `30m`, `6h`, `1d`; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use seconds or 30m, 6h, 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = DURATION.fullmatch(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration; use seconds or 30m, 6h, 1d")
        seconds = float(match[1]) * UNITS[match[2].lower()]
    if not seconds > 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def schedule(value: object) -> float | None:
    """A schedule's period in seconds, or None for none (`off`, `none`, `never`, null)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NO_SCHEDULE):
        return None
    return parse_duration(value)


def format_duration(seconds: float) -> str:
    """`42 s`, `5m 03s`, `5h 59m`, `2d 03h`."""
    whole = int(seconds)
    for unit, size, smaller, small in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size}{unit} {(whole % size) // small:02d}{smaller}"
    return f"{seconds:.0f} s"
