"""The traffic driver (`routeiq replay`): send recorded prompts through a gateway with the official openai
client, post the recorded quality of the model that answered as feedback, and summarise what it cost.

Talks to the gateway over HTTP only; never imports the gateway. Bounded by `limit`, `rate` and `concurrency`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyarrow as pa

from features import schema

MODEL_HEADER = "x-routeiq-model"
FIRST_MODEL_HEADER = "x-routeiq-cascade-first-model"
FIRST_ID_HEADER = "x-routeiq-cascade-first-id"
"""The gateway's response headers read here (spelt again: this driver never imports the gateway)."""
COST_WEIGHT_HEADER = "x-routeiq-cost-weight"
FEEDBACK_SOURCE = "replay"


@dataclass(frozen=True)
class Prompt:
    """One prompt to send, with every model's recorded (quality, cost) for it."""

    prompt_id: str
    text: str
    outcomes: Mapping[str, tuple[float | None, float | None]]


@dataclass
class TrafficSummary:
    """What a run did: answers per model, mean recorded quality, cost per 1k prompts, failures."""

    sent: int = 0
    failed: int = 0
    unrecorded: int = 0
    """Answers from a model with no recorded quality for that prompt (no feedback is posted)."""
    quality_sum: float = 0.0
    cost_sum: float = 0.0
    escalated: int = 0
    """Cascade requests whose first answer was escalated (both answers paid for, both rated)."""
    per_model: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return self.sent - self.failed

    @property
    def quality(self) -> float:
        scored = self.answered - self.unrecorded
        return self.quality_sum / scored if scored else float("nan")

    @property
    def cost_per_1k(self) -> float:
        return 1000.0 * self.cost_sum / self.answered if self.answered else float("nan")

    def shares(self) -> dict[str, float]:
        return {m: n / self.answered for m, n in self.per_model.most_common()} if self.answered else {}

    def render(self) -> str:
        lines = [
            f"{self.sent} prompts in {self.seconds:.1f} s, {self.failed} failed; mean recorded quality "
            f"{self.quality:.3f}, ${self.cost_per_1k:.4f} per 1k prompts",
        ]
        lines += [f"  {share:6.1%}  {model}" for model, share in self.shares().items()]
        lines += [f"  error {code}: {n}" for code, n in self.errors.most_common()]
        if self.escalated:
            lines.append(f"  {self.escalated} escalated by the cascade (both answers paid for and rated)")
        if self.unrecorded:
            lines.append(f"  {self.unrecorded} unrecorded: answers with no recorded quality, so no feedback posted")
        return "\n".join(lines)


def prompts_of(table: pa.Table, split: str | None, limit: int | None) -> list[Prompt]:
    """The prompts of `split` (all when None) in prompt-id order, at most `limit`, with their outcomes."""
    rows = table.to_pylist()
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows:
        if split is not None and row[schema.SPLIT] != split:
            continue
        entry = grouped.setdefault(row[schema.PROMPT_ID], {"text": row[schema.PROMPT], "outcomes": {}})
        entry["outcomes"][row[schema.MODEL]] = (row[schema.QUALITY], row[schema.COST_USD])
    ids = sorted(grouped)[: limit if limit is not None else None]
    return [Prompt(i, grouped[i]["text"], grouped[i]["outcomes"]) for i in ids]


async def drive(
    gateway: str,
    prompts: list[Prompt],
    *,
    api_key: str = "routeiq",
    model: str = "auto",
    cost_weight: float | None = None,
    rate: float | None = None,
    concurrency: int = 4,
    progress: Callable[[TrafficSummary], None] | None = None,
) -> TrafficSummary:
    """Send every prompt once (at most `rate` per second, `concurrency` at a time); post feedback."""
    import openai

    summary = TrafficSummary()
    headers = {COST_WEIGHT_HEADER: str(cost_weight)} if cost_weight is not None else {}
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    base = gateway.rstrip("/")
    async with (
        openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=api_key, max_retries=0, default_headers=headers) as client,
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0) as http,
    ):

        async def one(index: int, prompt: Prompt) -> None:
            if rate:
                await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            async with gate:
                await _send(client, http, model, prompt, summary)
            if progress is not None:
                progress(summary)

        await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    summary.seconds = time.perf_counter() - started
    return summary


async def _send(client: Any, http: httpx.AsyncClient, model: str, prompt: Prompt, summary: TrafficSummary) -> None:
    import openai

    summary.sent += 1
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": prompt.text}]
        )
    except openai.APIError as exc:
        summary.failed += 1
        summary.errors[getattr(exc, "code", None) or type(exc).__name__] += 1
        return
    completion = raw.parse()
    answered = raw.headers.get(MODEL_HEADER) or completion.model
    summary.per_model[answered] += 1
    quality, cost = prompt.outcomes.get(answered, (None, None))
    summary.cost_sum += cost or 0.0
    first_model, first_id = raw.headers.get(FIRST_MODEL_HEADER), raw.headers.get(FIRST_ID_HEADER)
    if first_model and first_id:
        # An escalated cascade: the first answer was paid for too, and its own feedback labels that model.
        summary.escalated += 1
        first_quality, first_cost = prompt.outcomes.get(first_model, (None, None))
        summary.cost_sum += first_cost or 0.0
        if first_quality is not None:
            await _feedback(http, first_id, first_quality, summary)
    if quality is None:
        summary.unrecorded += 1
        return
    summary.quality_sum += quality
    await _feedback(http, completion.id, quality, summary)


async def _feedback(http: httpx.AsyncClient, response_id: str, quality: float, summary: TrafficSummary) -> None:
    response = await http.post("/v1/feedback", json={"id": response_id, "score": quality, "source": FEEDBACK_SOURCE})
    if response.status_code != 200:
        summary.errors[f"feedback {response.status_code}"] += 1
