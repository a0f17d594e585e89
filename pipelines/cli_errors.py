"""How `routeiq` ends a failed command: one `error: ...` line on stderr that says what to change, and an exit code.

Knows the error types of the layers the CLI calls (typer's usage errors, OSError, ValueError with pydantic's
validation errors, MLflow's, the pipelines'); it never runs a command itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError

# typer vendors its own copy of click: these are not click's classes, and typer does not re-export them.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from pipelines.workspace import PipelineError

PROG_NAME = "routeiq"
"""Also under `python -m pipelines.cli`: usage lines and hints name the command users type."""
USER_ERROR_EXIT = 2
ABORTED_EXIT = 130


class CliError(Exception):
    """An error the user can fix; its message is printed as one line."""


USER_ERRORS = (CliError, OSError, ValueError, PipelineError)
"""Errors of a command that the user can fix (a missing or malformed file, a taken port, a bad value)."""


def run(app: typer.Typer) -> int:
    """Run `app` on sys.argv and return its exit code; a failure is printed as one line first."""
    try:
        result = app(standalone_mode=False, prog_name=PROG_NAME)
    except NoArgsIsHelpError as exc:  # `routeiq data`, with no command: the help is what was asked for
        if exc.format_message().strip():  # typer's rich help has printed itself on stdout already
            typer.echo(exc.format_message(), err=True)
        return exc.exit_code
    except typer.TyperException as exc:
        return report(usage_message(exc), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return ABORTED_EXIT
    except USER_ERRORS as exc:
        return report(message_of(exc), USER_ERROR_EXIT)
    return result if isinstance(result, int) else 0


def report(message: str, code: int) -> int:
    """Print `error: <message>` on one line of stderr; return `code`."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return code


def one_line(text: str) -> str:
    """Multi-line messages (pydantic's, YAML's) folded into one, so scripts can grep them."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def usage_message(exc: typer.TyperException) -> str:
    """typer's message (unknown command or option, missing or bad value) and where the usage is explained."""
    message = exc.format_message()
    if isinstance(exc, UsageError) and exc.ctx is not None:
        return f"{message} (see '{exc.ctx.command_path} --help')"
    return message


def message_of(exc: BaseException) -> str:
    """The message of a user error, with pydantic's per-field errors as `field: problem` and OS errors by path."""
    if isinstance(exc, ValidationError):
        fields = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        return f"invalid {exc.title}: {fields}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}; check the path and its permissions"
    return str(exc) or type(exc).__name__


@contextmanager
def registry_errors() -> Iterator[None]:
    """Turn MLflow's errors (no such model or version, an unreachable store) into a `CliError`."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise CliError(
            f"MLflow: {exc.message}; 'routeiq models list' shows what is registered in the store "
            "MLFLOW_TRACKING_URI names, 'routeiq train' registers a version"
        ) from exc
