"""DVC stage `import@<source>`: a public data set read in place → `data/outcomes/<source>.parquet`.

Reads params.yaml's `data` section; the work itself is `pipelines.outcomes.import_source`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict

from pipelines.outcomes import import_source, write_outcomes
from pipelines.splits import SplitParams


class Params(BaseModel):
    """The `data` section of params.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dir: Path
    sources: list[str]
    out_dir: Path = Path("data/outcomes")
    seed: int = 0
    valid_fraction: float = 0.1
    test_fraction: float = 0.2

    def split_params(self) -> SplitParams:
        return SplitParams(seed=self.seed, valid_fraction=self.valid_fraction, test_fraction=self.test_fraction)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", help="one of the sources listed in params.yaml data.sources")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = Params.model_validate(yaml.safe_load(args.params.read_text())["data"])
    if args.source not in params.sources:
        parser.error(f"source {args.source!r} is not in data.sources {params.sources} of {args.params}")
    table, stats = import_source(args.source, params.dir / args.source, params.split_params())
    out = params.out_dir / f"{args.source}.parquet"
    write_outcomes(table, out)
    print(f"{args.source}: {stats.rows} rows, {stats.prompts} prompts → {out}")  # noqa: T201


if __name__ == "__main__":
    main()
