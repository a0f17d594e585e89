"""Load for the benchmarks, loopback only and bounded in count and time.

- `interleaved_latencies`: one connection per target, requests sent one at a time in turn to each target, so
  the machine's noise falls on all of them alike (the added latency is a difference of two such series).
- `saturate`: many connections for a fixed time, with `wrk` when it is installed (Debian package `wrk`),
  otherwise Python threads; the target's CPU seconds are read around the run so throughput is per core used.
- `paced`: an open-loop constant request rate (asyncio + aiohttp), recording each answer's status and its
  `x-routeiq-*` headers.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import orjson

from benchmarks.targets import Target, cpu_seconds

TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class Saturation:
    """What a fixed-time run at `connections` achieved."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    cpu_seconds: float
    """CPU the target process used during the run."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cores_used(self) -> float:
        return self.cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def rps_per_core(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds else 0.0


@dataclass(frozen=True)
class Answer:
    """One paced request: when it was sent and answered (seconds from the start), its status (0: no answer)
    and headers."""

    sent: float
    received: float
    status: int
    headers: Mapping[str, str]


def chat_body(target: Target, prompt: str) -> bytes:
    return orjson.dumps({"model": target.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 16})


def interleaved_latencies(
    targets: Sequence[Target], prompt: str, requests: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Milliseconds per request for each target over `requests` rounds, and errors (non-200) per target."""
    connections = {t.name: _connection(t.url) for t in targets}
    bodies = {t.name: chat_body(t, prompt) for t in targets}
    times: dict[str, list[float]] = {t.name: [] for t in targets}
    errors = dict.fromkeys(times, 0)
    try:
        for round_ in range(warmup + requests):
            for target in targets:
                elapsed, status = _timed_post(connections[target.name], target, bodies[target.name])
                if round_ >= warmup:
                    times[target.name].append(elapsed)
                    errors[target.name] += status != 200
    finally:
        for connection in connections.values():
            connection.close()
    return times, errors


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError(f"benchmarks send load to loopback only, not {url}")
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)


def _timed_post(connection: http.client.HTTPConnection, target: Target, body: bytes) -> tuple[float, int]:
    headers = {"Content-Type": "application/json", **target.headers}
    began = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
    answer = connection.getresponse()
    answer.read()
    return (time.perf_counter() - began) * 1000, answer.status


def saturate(target: Target, prompt: str, connections: int, seconds: float) -> Saturation:
    """Drive `target` with `connections` keep-alive connections for `seconds`."""
    wrk = shutil.which("wrk")
    before = cpu_seconds(target.pid)
    if wrk:
        requests, errors, elapsed = _wrk(wrk, target, chat_body(target, prompt), connections, seconds)
    else:
        requests, errors, elapsed = _threads(target, chat_body(target, prompt), connections, seconds)
    used = cpu_seconds(target.pid) - before
    return Saturation("wrk" if wrk else "python threads", connections, elapsed, requests, errors, used)


def _wrk(wrk: str, target: Target, body: bytes, connections: int, seconds: float) -> tuple[int, int, float]:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    for name, value in {"Content-Type": "application/json", **target.headers}.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        command = [
            wrk,
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
        ]
        output = subprocess.run([*command, target.chat_url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    finally:
        Path(script.name).unlink()
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if not done:
        raise RuntimeError(f"could not read wrk's summary:\n{output}")
    elapsed = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return int(done.group(1)), errors, elapsed


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _threads(target: Target, body: bytes, connections: int, seconds: float) -> tuple[int, int, float]:
    counts = [[0, 0] for _ in range(connections)]
    stop = time.perf_counter() + seconds

    def worker(slot: list[int]) -> None:
        connection = _connection(target.url)
        while time.perf_counter() < stop:
            _, status = _timed_post(connection, target, body)
            slot[0] += 1
            slot[1] += status != 200
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(slot,)) for slot in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts), time.perf_counter() - began


def paced(
    target: Target,
    prompts: Sequence[str],
    rate: float,
    seconds: float,
    on_tick: Callable[[float], None] | None = None,
) -> list[Answer]:
    """Send `rate` requests per second for `seconds` whatever the answers' speed (open loop); `on_tick` is
    called with the elapsed time about once a second (e.g. to sample memory or trigger a promotion)."""
    return asyncio.run(_paced(target, prompts, rate, seconds, on_tick))


async def _paced(
    target: Target,
    prompts: Sequence[str],
    rate: float,
    seconds: float,
    on_tick: Callable[[float], None] | None,
) -> list[Answer]:
    total = int(rate * seconds)
    answers: list[Answer] = []
    headers = {"Content-Type": "application/json", **target.headers}
    # aiohttp, not httpx: httpx's pool costs milliseconds of CPU per call under concurrency, and a driver that
    # falls behind its own schedule would measure itself.
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        began = time.perf_counter()

        async def one(index: int) -> None:
            body = chat_body(target, prompts[index % len(prompts)])
            sent = time.perf_counter() - began
            try:
                async with session.post(target.chat_url, data=body) as reply:
                    await reply.read()
                    kept = {k.lower(): v for k, v in reply.headers.items() if k.lower().startswith("x-routeiq-")}
                    answers.append(Answer(sent, time.perf_counter() - began, reply.status, kept))
            except (aiohttp.ClientError, TimeoutError):
                answers.append(Answer(sent, time.perf_counter() - began, 0, {}))

        tasks = []
        ticks = []
        next_tick = 1.0
        for index in range(total):
            due = index / rate
            delay = due - (time.perf_counter() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            if on_tick and due >= next_tick:
                # In a thread and not awaited here: a slow tick (a promotion) must not hold the pace back.
                ticks.append(asyncio.create_task(asyncio.to_thread(on_tick, due)))
                next_tick += 1.0
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks, *ticks)
    return sorted(answers, key=lambda a: a.sent)
