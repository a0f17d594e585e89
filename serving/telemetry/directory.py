"""The span directory is checked when the gateway starts: created if need be and written to once (a probe file,
removed at once), so an unwritable directory stops the start with one line instead of failing every export.

Touches only the configured directory; it never writes a span.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Final

from serving.exceptions import GatewayConfigError

PROBE_PREFIX: Final = ".routeiq-write-probe-"
SETTING: Final = "routeiq_settings.telemetry.directory"


def check_writable(directory: Path) -> None:
    """Create `directory` (and its parents) and write a probe file in it; a `GatewayConfigError` if either fails."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=PROBE_PREFIX):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GatewayConfigError(
            f"the span directory {directory} is not writable ({reason}); set {SETTING} to a directory the gateway "
            "can create and write, or routeiq_settings.telemetry.enabled to false"
        ) from exc
