"""DVC stage `label`: logged requests joined with their feedback → outcome rows (features/schema.py), split by prompt.

Reads the warehouse only, never writes it; every request left out is counted under its reason, and so is every
feedback span not used (no request, not from the request's key or a rater role, or not the first).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from features import schema
from features.prompt import normalise_prompt
from pipelines.ingest import IngestParams, loop_section, sql_text
from pipelines.loop_params import LoopPaths
from pipelines.outcomes import read_outcomes, write_outcomes
from pipelines.splits import SplitParams, assign_split
from serving.access.keys import Role
from serving.providers import pricing
from serving.settings import DEFAULT_RATERS

STATS_FILE: Final = Path("data/loop/label.json")
TASK: Final = "traffic"
SOURCE: Final = "traces"
DROPPED: Final = "dropped"
"""Column of the label query: why a request yields no outcome row (null when it yields one)."""
FAILED: Final = "failed"
SERVED_BY_FALLBACK: Final = "served_by_fallback"
NO_PROMPT_TEXT: Final = "no_prompt_text"
NO_FEEDBACK: Final = "no_feedback"
INVALID_SCORE: Final = "invalid_score"
DROP_REASONS: Final = (FAILED, SERVED_BY_FALLBACK, NO_PROMPT_TEXT, NO_FEEDBACK, INVALID_SCORE)
USED: Final = "used"
REPEATED: Final = "repeated"
NOT_OWNER: Final = "not_owner"
UNMATCHED: Final = "unmatched"
VERDICTS: Final = {verdict: verdict for verdict in (USED, REPEATED, NOT_OWNER, UNMATCHED)}
"""What label_feedback.sql decides for each feedback span; only the `used` ones label a request."""
QUERY_PARAMETERS: Final = {
    "task": TASK,
    "source": SOURCE,
    "provider": pricing.PROVIDER,
    "config": pricing.CONFIG,
    "price_map": pricing.PRICE_MAP,
    "recorded": schema.COST_RECORDED,
    "priced": schema.COST_PRICED,
    "estimated": schema.COST_ESTIMATED,
    **{reason: reason for reason in DROP_REASONS},
    USED: USED,
}


def _logged_traffic_split() -> SplitParams:
    # A larger test share than for public data: it is the held-out logged traffic for off-policy evaluation.
    return SplitParams(valid_fraction=0.2, test_fraction=0.2)


class LabelParams(BaseModel):
    """The `loop` section keys this stage reads (the section is shared by the loop's stages)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    split: SplitParams = Field(default_factory=_logged_traffic_split)
    bootstrap: tuple[Path, ...] = ()
    """Public outcome tables (parquet) unioned in, with their own splits, so a router can be trained before
    traffic exists."""
    feedback_raters: tuple[Role, ...] = DEFAULT_RATERS
    """Roles whose feedback counts on any caller's response: keep it the gateway's
    `routeiq_settings.feedback.raters`. Feedback from any other key counts only on that key's own requests."""


@dataclass
class LabelStats:
    """What one run labelled and left out; `dvc metrics` shows it from `data/loop/label.json`."""

    requests: int = 0
    rows: int = 0
    """Outcome rows from traffic."""
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    """Requests without an outcome row, per reason."""
    feedback_unmatched: int = 0
    """Feedback spans whose response is in no ingested request."""
    feedback_not_owner: int = 0
    """Feedback spans ignored: from a key that neither made the request nor has a `feedback_raters` role."""
    feedback_repeated: int = 0
    """Feedback spans ignored: a response's feedback after the first that counts (the first is its quality)."""
    prompts: int = 0
    per_split: dict[str, int] = field(default_factory=lambda: dict.fromkeys(schema.SPLITS, 0))
    """Traffic rows per split."""
    bootstrap_rows: int = 0
    resplit_prompts: int = 0
    """Prompts the bootstrap tables put in different splits, given one split for all their rows."""

    def summary(self) -> str:
        dropped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in self.dropped.items())
        splits = "/".join(str(self.per_split[s]) for s in schema.SPLITS)
        return (
            f"label: {self.rows} outcome rows ({'/'.join(schema.SPLITS)} {splits}) from {self.requests} requests "
            f"on {self.prompts} prompts; dropped {dropped}; {self.feedback_unmatched} feedback without a request, "
            f"{self.feedback_not_owner} from a key not the request's, {self.feedback_repeated} repeated; "
            f"+{self.bootstrap_rows} bootstrap rows"
        )


def label(warehouse: Path, params: LabelParams) -> tuple[pa.Table, LabelStats]:
    """Outcome rows for every successful request with a captured prompt and feedback (the first from the
    request's own key or a rater role wins), unioned with the bootstrap tables; splits by prompt, so no prompt
    is in two splits."""
    judged, verdicts = _judged(warehouse, params.feedback_raters)
    stats = LabelStats(
        requests=judged.num_rows,
        feedback_unmatched=verdicts.get(UNMATCHED, 0),
        feedback_not_owner=verdicts.get(NOT_OWNER, 0),
        feedback_repeated=verdicts.get(REPEATED, 0),
    )
    for reason, count in Counter(r for r in judged[DROPPED].to_pylist() if r is not None).items():
        stats.dropped[reason] = count
    traffic = judged.filter(pc.is_null(judged[DROPPED])).drop_columns([DROPPED])
    prompts = _normalised(traffic[schema.PROMPT])
    traffic = traffic.set_column(traffic.schema.get_field_index(schema.PROMPT), schema.PROMPT, prompts)
    bootstrap = [read_outcomes(path) for path in params.bootstrap]
    splits = _prompt_splits(traffic[schema.PROMPT_ID].to_pylist(), bootstrap, params.split, stats)
    traffic = _with_splits(traffic, splits)
    stats.rows, stats.prompts = traffic.num_rows, len(set(traffic[schema.PROMPT_ID].to_pylist()))
    stats.per_split |= Counter(traffic[schema.SPLIT].to_pylist())
    stats.bootstrap_rows = sum(t.num_rows for t in bootstrap)
    parts = [traffic, *(_with_splits(t.drop_columns([schema.SPLIT]), splits) for t in bootstrap)]
    return schema.conform(pa.concat_tables([schema.conform(p) for p in parts])), stats


def _normalised(prompts: pa.ChunkedArray) -> pa.Array:
    """`normalise_prompt` of every row, computed once per distinct prompt: logged traffic repeats prompts, and
    a million rows through Python strings cost seconds."""
    encoded = prompts.combine_chunks().dictionary_encode()
    distinct = pa.array([normalise_prompt(p) for p in encoded.dictionary.to_pylist()], pa.string())
    return distinct.take(encoded.indices)


def _judged(warehouse: Path, raters: Sequence[Role]) -> tuple[pa.Table, dict[str, int]]:
    """The label query's rows, and how many feedback spans got each verdict."""
    if not warehouse.is_file():
        raise FileNotFoundError(f"warehouse {warehouse} not found; run the ingest stage (python -m pipelines.ingest)")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(sql_text("label_feedback"), {"raters": [role.value for role in raters], **VERDICTS})
        judged = con.sql(sql_text("label"), params=QUERY_PARAMETERS).to_arrow_table()
        verdicts = {
            str(verdict): int(count) for verdict, count in con.execute(sql_text("label_feedback_counts")).fetchall()
        }
    return judged, verdicts


def _prompt_splits(
    traffic_ids: Iterable[str], bootstrap: Sequence[pa.Table], params: SplitParams, stats: LabelStats
) -> dict[str, str]:
    """A bootstrap prompt keeps its split (traffic on it follows); a new prompt is drawn; a prompt the
    bootstrap tables disagree on is drawn with their splits as hints, so it still lands in one split."""
    hints: dict[str, set[str]] = defaultdict(set)
    for table in bootstrap:
        for prompt_id, split in zip(table[schema.PROMPT_ID].to_pylist(), table[schema.SPLIT].to_pylist(), strict=True):
            hints[prompt_id].add(split)
    for prompt_id in traffic_ids:
        hints.setdefault(prompt_id, set())
    stats.resplit_prompts = sum(1 for h in hints.values() if len(h) > 1)
    return {p: next(iter(h)) if len(h) == 1 else assign_split(p, h, params) for p, h in hints.items()}


def _with_splits(table: pa.Table, splits: Mapping[str, str]) -> pa.Table:
    column = pa.array([splits[p] for p in table[schema.PROMPT_ID].to_pylist()], pa.string())
    return table.append_column(schema.SPLIT, column)


def main() -> None:
    section = loop_section()
    warehouse = IngestParams.model_validate(section).warehouse
    table, stats = label(warehouse, LabelParams.model_validate(section))
    outcomes = LoopPaths.model_validate(section).outcomes
    write_outcomes(table, outcomes)
    STATS_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATS_FILE.write_text(json.dumps(asdict(stats), indent=2) + "\n")
    print(f"{stats.summary()} → {outcomes}")  # noqa: T201


if __name__ == "__main__":
    main()
