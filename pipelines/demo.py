"""`make demo`: runs what exists of route → observe → learn → update on the embedded defaults, with progress.

Starts only loopback processes of its own and stops every one of them at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines import demo_gateway, demo_steps

T = TypeVar("T")
NOT_BUILT_YET = ("the DVC loop from the gateway's traces to a promoted router",)


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
    parser.add_argument("--workdir", type=Path, default=Path("runs/demo"), help="where outputs are written")
    parser.add_argument("--requests", type=int, default=12, help="prompts replayed through the provider")
    parser.add_argument("--gateway-requests", type=int, default=200, help="test prompts sent through the gateway")
    args = parser.parse_args(argv)
    if not (args.data_dir / "routerbench").is_dir():
        parser.error(f"{args.data_dir} has no routerbench/ directory; pass --data-dir to the routing data")
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = step(1, "Import the public outcome data sets", lambda: demo_steps.import_all(args.data_dir, args.workdir))
    routerbench = paths["routerbench"]
    step(2, "Summarise the routerbench test split", lambda: demo_steps.summarise_test_split(routerbench))
    with demo_steps.running_replay_provider(routerbench, args.workdir) as base_url:
        step(
            3,
            "Replay recorded answers through the official OpenAI SDK",
            lambda: demo_steps.replay_round_trip(base_url, routerbench, args.requests),
        )
        step(
            4,
            "Train a kNN router on the training split; route and score the test split",
            lambda: demo_steps.evaluate_knn_router(routerbench, args.workdir),
        )
        models = demo_steps.recorded_models(routerbench)
        router = args.workdir / demo_steps.KNN_ARTIFACT
        config = demo_gateway.write_config(args.workdir, base_url, models, router)
        with demo_gateway.running_gateway(config, args.workdir) as gateway:
            step(
                5,
                "Route test prompts through the gateway with the kNN router; post recorded quality as feedback",
                lambda: demo_gateway.drive_gateway(
                    gateway, routerbench, args.gateway_requests, demo_steps.DEMO_COST_WEIGHT
                ),
            )
    step(6, "Read back the gateway's spans", lambda: demo_gateway.show_spans(args.workdir))
    print("\nNot built yet: " + "; ".join(NOT_BUILT_YET) + ".")  # noqa: T201


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
