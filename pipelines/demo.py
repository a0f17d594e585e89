"""`make demo`: the closed loop route → observe → learn → update on the embedded defaults, with progress.

Starts only loopback processes of its own and stops every one of them at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.closed_loop import run_loop

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def step(number: int, title: str, work: Callable[[], T]) -> T:
    """Run one numbered step, printing its title and how long it took."""
    print(f"\n[{number}] {title}", flush=True)  # noqa: T201
    started = time.perf_counter()
    result = work()
    print(f"    done in {time.perf_counter() - started:.1f} s", flush=True)  # noqa: T201
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="the routing-data directory")
    parser.add_argument("--workdir", type=Path, default=Path("runs/demo"), help="where everything is written")
    parser.add_argument("--profile", default="demo", help="a profile of params.yaml (demo, small)")
    args = parser.parse_args(argv)
    if not (args.data_dir / "routerbench").is_dir():
        parser.error(f"{args.data_dir} has no routerbench/ directory; pass --data-dir to the routing data")
    started = time.perf_counter()
    outcome = run_loop(REPO, args.data_dir.resolve(), args.workdir.resolve(), args.profile, step)
    print(  # noqa: T201
        f"\nThe loop closed in {time.perf_counter() - started:.0f} s: {outcome.promoted_family} v"
        f"{outcome.promoted_version} serves. Workspace {outcome.workspace} (dvc.yaml, params.yaml, "
        "mlflow.db: `mlflow ui --backend-store-uri sqlite:///" + str(outcome.workspace / "mlflow.db") + "`)."
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
