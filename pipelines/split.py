"""DVC stage `split`: seeded train/valid/test assignment by prompt group of the labelled traffic. Rows from
bootstrap tables (full-information public data) keep the splits their source gave them.

`python -m pipelines.split`; reads `data/loop/labelled.parquet`, writes the loop's outcome table.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa

from features import schema
from pipelines.loop_params import loop_params, read_section
from pipelines.outcomes import read_outcomes, write_outcomes
from pipelines.splits import SplitParams, assign_splits

LABELLED = Path("data/loop/labelled.parquet")
TRAFFIC_SOURCE = "traces"


def split(table: pa.Table, params: SplitParams) -> pa.Table:
    """Traffic rows get a split drawn per prompt id; other rows keep theirs."""
    rows = table.to_pylist()
    traffic = {r[schema.PROMPT_ID] for r in rows if r[schema.SOURCE] == TRAFFIC_SOURCE}
    assigned = assign_splits({group: () for group in sorted(traffic)}, params)
    for row in rows:
        if row[schema.SOURCE] == TRAFFIC_SOURCE:
            row[schema.SPLIT] = assigned[row[schema.PROMPT_ID]]
    return pa.Table.from_pylist(rows, schema=table.schema)


def main() -> None:
    params = SplitParams.model_validate(read_section().get("split") or {})
    table = split(read_outcomes(LABELLED), params)
    write_outcomes(table, loop_params().outcomes)
    counts = Counter(table[schema.SPLIT].to_pylist())
    print(f"split {table.num_rows} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
