"""Micro-batching of router decisions: requests that arrive while a router is busy deciding are decided
together in its next call, so under load one featurize-and-predict serves many requests.

No request waits for a batch to fill: when the router is idle a lone request is sent at once, so latency at
low load is that of a single decision. One batch per router is in flight at a time; they run in the gateway's
router executor, off the event loop. Requests may narrow the candidates (a key allowed only some models): a batch
predicts once per distinct candidate set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Final

from routers.routing_model import RoutedDecision
from serving.routing.loader import ActiveRouter

MAX_BATCH: Final = 64


@dataclass
class _Waiting:
    prompt: str
    cost_weight: float
    candidates: tuple[str, ...]
    future: asyncio.Future[RoutedDecision]


@dataclass
class _Queue:
    """The requests waiting for one router, and whether a batch of it is being decided now."""

    router: ActiveRouter
    waiting: list[_Waiting] = field(default_factory=list)
    busy: bool = False


class DecisionBatcher:
    """Per router, at most one batch in flight; everything that queued meanwhile goes in the next one."""

    def __init__(self, executor: Executor, max_batch: int = MAX_BATCH) -> None:
        self._executor = executor
        self._max_batch = max_batch
        self._queues: dict[int, _Queue] = {}

    def decide(
        self, router: ActiveRouter, prompt: str, cost_weight: float, candidates: tuple[str, ...] | None = None
    ) -> asyncio.Future[RoutedDecision]:
        """A future of this prompt's decision among `candidates` (default: all of the router's); cancelling it
        (a missed budget) drops only this request."""
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(id(router), _Queue(router))
        waiting = _Waiting(prompt, cost_weight, candidates or router.candidates, loop.create_future())
        queue.waiting.append(waiting)
        if not queue.busy:
            self._submit(loop, queue)
        return waiting.future

    def _submit(self, loop: asyncio.AbstractEventLoop, queue: _Queue) -> None:
        batch = [w for w in queue.waiting[: self._max_batch] if not w.future.done()]
        del queue.waiting[: self._max_batch]
        if not batch:
            self._finish(loop, queue)
            return
        queue.busy = True
        work = loop.run_in_executor(self._executor, _decide_batch, queue.router, batch)
        work.add_done_callback(_deliver_then(batch, lambda: self._finish(loop, queue)))

    def _finish(self, loop: asyncio.AbstractEventLoop, queue: _Queue) -> None:
        queue.busy = False
        if queue.waiting:
            self._submit(loop, queue)
        else:
            # Keyed by id(): drop the entry with its last request, so a router that was swapped out is freed.
            self._queues.pop(id(queue.router), None)


def _deliver_then(
    batch: Sequence[_Waiting], then: Callable[[], None]
) -> Callable[[asyncio.Future[list[RoutedDecision]]], None]:
    def deliver(work: asyncio.Future[list[RoutedDecision]]) -> None:
        error = work.exception() if not work.cancelled() else asyncio.CancelledError()
        for index, waiting in enumerate(batch):
            if waiting.future.done():  # its request gave up (budget missed)
                continue
            if error is not None:
                waiting.future.set_exception(error)
            else:
                waiting.future.set_result(work.result()[index])
        then()

    return deliver


def _decide_batch(router: ActiveRouter, batch: Sequence[_Waiting]) -> list[RoutedDecision]:
    """The batch's decisions in order: one `decide_each` per distinct candidate set (usually just one)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, waiting in enumerate(batch):
        groups.setdefault(waiting.candidates, []).append(index)
    decided: list[RoutedDecision | None] = [None] * len(batch)
    for candidates, rows in groups.items():
        prompts = [batch[i].prompt for i in rows]
        weights = [batch[i].cost_weight for i in rows]
        for i, decision in zip(
            rows, router.model.decide_each(prompts, candidates, weights, ids=[""] * len(rows)), strict=True
        ):
            decided[i] = decision
    return [d for d in decided if d is not None]
