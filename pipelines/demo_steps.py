"""Processes of `make demo` and the loop test: the replay provider and other `routeiq` servers in
subprocesses, started on loopback and always stopped by the context manager that started them; progress lines.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0


def say(text: str) -> None:
    print(f"    {text}", flush=True)  # noqa: T201


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_process(
    name: str, arguments: list[str], ready_url: str, log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `python -m pipelines.cli <arguments>`; wait until `ready_url` answers 200; always stop it."""
    command = [sys.executable, "-m", "pipelines.cli", *arguments]
    with running_command(name, command, ready_url, log, cwd=cwd) as process:
        yield process


@contextlib.contextmanager
def running_command(
    name: str,
    command: list[str],
    ready_url: str,
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` (output to `log`); wait until `ready_url` answers 200; always stop it (SIGTERM, then kill)."""
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd, env=env)  # noqa: S603
        try:
            _wait_ready(name, ready_url, process, log)
            say(f"{name} pid {process.pid} ready (log: {log})")
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the normal end.
            ended = "cleanly" if process.returncode in (0, -signal.SIGTERM) else f"with code {process.returncode}"
            say(f"{name} stopped {ended}")


@contextlib.contextmanager
def running_replay_provider(outcomes: Path, workdir: Path) -> Iterator[str]:
    """Start `routeiq replay-provider` on a free loopback port; yield its `/v1` base URL; always stop it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    arguments = ["replay-provider", "--outcomes", str(outcomes), "--port", str(port)]
    with running_process("replay provider", arguments, f"{base_url}/models", workdir / "replay-provider.log"):
        yield base_url


def _wait_ready(name: str, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s; see {log}")
