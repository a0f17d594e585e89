"""`make demo`: the closed loop route → observe → learn → update on the embedded defaults, with progress.

Starts only loopback processes of its own and stops every one of them at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.closed_loop import profile, run_loop
from pipelines.workspace import PipelineError

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
NOT_PROMOTED = 3
"""Exit status with --require-promotion when the loop promoted nothing (the verdict line says why)."""


def step(number: int, title: str, work: Callable[[], T]) -> T:
    """Run one numbered step, printing its title and how long it took."""
    print(f"\n[{number}] {title}", flush=True)  # noqa: T201
    started = time.perf_counter()
    result = work()
    print(f"    done in {time.perf_counter() - started:.1f} s", flush=True)  # noqa: T201
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="the routing-data directory")
    parser.add_argument("--workdir", type=Path, default=Path("runs/demo"), help="where everything is written")
    parser.add_argument("--profile", default="demo", help="a profile of params.yaml (demo, small, two)")
    parser.add_argument(
        "--require-promotion",
        action="store_true",
        help=f"exit with status {NOT_PROMOTED} when no router is promoted (for scripts); without it, 0",
    )
    args = parser.parse_args(argv)
    if not (args.data_dir / "routerbench").is_dir():
        parser.error(f"{args.data_dir} has no routerbench/ directory; pass --data-dir to the routing data")
    try:
        profile(args.profile, REPO)
    except ValueError as unknown:
        parser.error(str(unknown))
    started = time.perf_counter()
    try:
        outcome = run_loop(REPO, args.data_dir.resolve(), args.workdir.resolve(), args.profile, step)
    except (PipelineError, ValueError, RuntimeError) as failed:
        print(f"\nThe demo stopped: {failed}", file=sys.stderr)  # noqa: T201
        return 1
    promotion = outcome.promotion
    served = (
        f"{promotion.family} v{promotion.version} serves"
        if promotion.version is not None
        else "nothing was promoted, the gateway kept what it served"
    )
    print(  # noqa: T201
        f"\nThe loop closed in {time.perf_counter() - started:.0f} s: {served}. Workspace {outcome.workspace} "
        "(dvc.yaml, params.yaml, mlflow.db: `mlflow ui --backend-store-uri sqlite:///"
        + str(outcome.workspace / "mlflow.db")
        + "`)."
    )
    return NOT_PROMOTED if args.require_promotion and promotion.version is None else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
