"""The `routeiq` command line: thin commands that parse options and call the modules that do the work.

User errors become one line on stderr and exit code 2 (`pipelines.cli_errors`); nothing heavy is imported
until a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli_errors import CliError, registry_errors, run

app = typer.Typer(
    help="RouteIQ: an AI gateway whose routing policy is a learned, registered model.", no_args_is_help=True
)
data_app = typer.Typer(help="Import and inspect outcome tables.", no_args_is_help=True)
models_app = typer.Typer(help="Registered routing models.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
report_app = typer.Typer(help="Generated reports for docs/.", no_args_is_help=True)
app.add_typer(report_app, name="report")
DEFAULT_OUTCOMES = Path("data/outcomes/routerbench.parquet")
PORT_HELP = "Port to listen on, 1..65535 (0: any free port, printed at start)."


def rate_option(help: str) -> Any:
    """An option holding a probability per request, in [0, 1]."""
    return typer.Option(min=0.0, max=1.0, help=help)


@data_app.command("import")
def data_import(
    source: Annotated[str, typer.Argument(help="routerbench | llmrouter | routerarena")],
    path: Annotated[Path, typer.Argument(help="The source's directory, read in place.")],
    out: Annotated[Path, typer.Option("--out", help="Outcome table to write (parquet).")],
    seed: Annotated[int, typer.Option(help="Seed of the split assignment.")] = 0,
    valid_fraction: Annotated[float, typer.Option(help="Share of training-side prompts held for validation.")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Share of prompts for test, for sources without splits.")] = 0.2,
) -> None:
    """Read a public outcome data set into the canonical outcome table."""
    from pipelines.outcomes import import_source, write_outcomes
    from pipelines.splits import SplitParams

    params = SplitParams(seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction)
    table, stats = import_source(source, path, params)
    write_outcomes(table, out)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(stats.per_split.items()))
    typer.echo(
        f"{source}: {stats.rows} rows, {stats.prompts} prompts ({splits}); {stats.unknown_quality} unknown "
        f"qualities kept as null; {stats.duplicates} duplicate records merged; "
        f"{stats.prompts_in_several_files} prompts in several files given one split → {out}"
    )


@data_app.command("summary")
def data_summary(
    file: Annotated[Path, typer.Argument(help="Outcome table (parquet).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per task and split: prompts, models, each model's mean quality and cost per 1k prompts, the oracle."""
    from pipelines.outcomes import read_outcomes
    from pipelines.summary import render, summarise

    blocks = summarise(read_outcomes(file))
    typer.echo(json.dumps(blocks, indent=2) if as_json else render(blocks))


@app.command("replay-provider")
def replay_provider(
    outcomes: Annotated[Path, typer.Option(help="Outcome table whose recorded answers are served.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=PORT_HELP)] = 8001,
    latency: Annotated[Path | None, typer.Option(help="YAML/JSON latency model (see docs/replay-provider.md).")] = None,
    error_rate: Annotated[float, rate_option("Share of requests answered 500.")] = 0.0,
    rate_limit_rate: Annotated[float, rate_option("Share of requests answered 429.")] = 0.0,
    retry_after_seconds: Annotated[int, typer.Option(min=0, help="Retry-After of the injected 429s.")] = 1,
    stall_rate: Annotated[float, rate_option("Share of requests that stall first.")] = 0.0,
    stall_seconds: Annotated[float, typer.Option(min=0.0, help="How long a stall lasts.")] = 30.0,
    broken_stream_rate: Annotated[float, rate_option("Share of streams cut before their end.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of jitter and faults.")] = 0,
) -> None:
    """Serve recorded answers as an OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions and
    /v1/embeddings); prints one line when it listens: where, and which models and how many prompts."""
    from serving.replay import LatencyModel, ReplaySettings, serve
    from serving.replay.exceptions import ReplaySetupError

    if not outcomes.is_file():
        raise CliError(f"outcome table {outcomes} not found; create it with 'routeiq data import'")
    try:
        settings = ReplaySettings(
            outcomes=outcomes,
            latency=ReplaySettings.latency_from_file(latency) if latency else LatencyModel(),
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            retry_after_seconds=retry_after_seconds,
            stall_rate=stall_rate,
            stall_seconds=stall_seconds,
            broken_stream_rate=broken_stream_rate,
            seed=seed,
        )
        serve(settings, host=host, port=port, announce=typer.echo)
    except ReplaySetupError as exc:
        raise CliError(str(exc)) from exc


@app.command("serve")
def serve_command(
    config: Annotated[Path, typer.Option(help="Gateway config: LiteLLM's format plus routeiq_settings.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=PORT_HELP)] = 4000,
    access_log: Annotated[
        bool, typer.Option(help="Log a line per request (every request is also a span); costs ~10% throughput.")
    ] = False,
) -> None:
    """Run the OpenAI-compatible gateway: learned routing, telemetry, feedback, hot reload (docs/gateway.md)."""
    from serving.config import load_config
    from serving.server import serve

    serve(load_config(config), host=host, port=port, access_log=access_log)


@app.command("replay")
def replay_command(
    gateway: Annotated[str, typer.Option(help="Gateway base URL, e.g. http://127.0.0.1:4000.")],
    outcomes: Annotated[Path, typer.Option(help="Outcome table whose prompts are sent.")] = DEFAULT_OUTCOMES,
    split: Annotated[str, typer.Option(help="train | valid | test | all.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="Send at most this many prompts.")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.0, help="Requests per second (default: as fast as allowed).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Requests in flight at once.")] = 4,
    cost_weight: Annotated[float | None, typer.Option(min=0.0, help="λ sent as x-routeiq-cost-weight.")] = None,
    model: Annotated[str, typer.Option(help="Model name to ask for (the gateway's virtual model routes).")] = "auto",
    api_key: Annotated[str, typer.Option(envvar="ROUTEIQ_API_KEY", help="Bearer key of the gateway.")] = "routeiq",
) -> None:
    """Drive recorded prompts through a gateway with the openai client, post their recorded quality as feedback,
    and print quality, cost per 1k prompts and share per model."""
    import asyncio

    from pipelines.outcomes import read_outcomes
    from pipelines.traffic import TrafficSummary, drive, prompts_of

    if not outcomes.is_file():
        raise CliError(f"outcome table {outcomes} not found; create it with 'routeiq data import'")
    prompts = prompts_of(read_outcomes(outcomes), None if split == "all" else split, limit)
    if not prompts:
        raise CliError(f"{outcomes} has no prompts in split {split!r}; use train, valid, test or all")
    step = max(1, len(prompts) // 10)

    def progress(summary: TrafficSummary) -> None:
        if summary.sent % step == 0 or summary.sent == len(prompts):
            typer.echo(f"  {summary.sent}/{len(prompts)} sent, {summary.failed} failed", err=True)

    summary = asyncio.run(
        drive(
            gateway,
            prompts,
            api_key=api_key,
            model=model,
            cost_weight=cost_weight,
            rate=rate,
            concurrency=concurrency,
            progress=progress,
        )
    )
    typer.echo(summary.render())
    if summary.failed:
        raise CliError(f"{summary.failed} of {summary.sent} requests failed; see the error counts above")


@app.command("eval")
def evaluate(
    outcomes: Annotated[Path, typer.Option(help="Outcome table with the true outcomes.")],
    decisions: Annotated[Path, typer.Option(help="Decisions JSONL: id, model, quality{}, cost{}.")],
    out: Annotated[Path, typer.Option(help="Directory for report.json and curves.png.")] = Path("runs/eval"),
) -> None:
    """Score a router's decisions: cost–quality curve, AIQ, PGR/APGR/CPT, savings, baselines."""
    from pipelines.evaluation import run_eval

    report = run_eval(outcomes, decisions, out)
    typer.echo(json.dumps(report.get("summary", report), indent=2))
    typer.echo(f"wrote {out / 'report.json'} and {out / 'curves.png'}")


@app.command("train")
def train_command(
    family: Annotated[str, typer.Option(help="A family, a comma-separated list, or 'all'.")] = "all",
    trials: Annotated[
        int | None, typer.Option(min=1, help="Optuna trials per family [default: tune.<family>.trials of params.yaml]")
    ] = None,
    outcomes: Annotated[Path, typer.Option(help="Outcome table with train/valid/test splits.")] = DEFAULT_OUTCOMES,
    seed: Annotated[int, typer.Option(help="Seed of the samplers and of every fit.")] = 0,
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="Run the loop from the gateway's traces instead: dvc repro register.")
    ] = False,
) -> None:
    """Tune each family with Optuna (objective: validation AIQ), refit the best, register it in MLflow.

    With --pipeline: run the DVC loop (ingest → label + split → featurize → tune@family → evaluate → register)
    in the current project, streaming each stage's progress; families and trials come from params.yaml."""
    from pipelines.train import custom_path, resolve_families, train, trials_from_params

    if pipeline:
        from pipelines.workspace import dvc

        dvc(Path.cwd(), ["repro", "register"], typer.echo)
        return
    if not outcomes.is_file():
        raise CliError(f"outcome table {outcomes} not found; run 'dvc repro import' or 'routeiq data import'")
    families = resolve_families(family)
    budget = trials or trials_from_params(Path("params.yaml"), families, default=10)
    with registry_errors():
        results = train(
            outcomes, families, trials=budget, seed=seed, progress=typer.echo, custom=custom_path(Path("params.yaml"))
        )
    typer.echo(f"\n{'family':<22} {'version':>7} {'valid AIQ':>10} {'test AIQ':>9} {'trials':>6}")
    for r in results:
        typer.echo(
            f"{r.family:<22} {r.version:>7} {r.metrics['valid_aiq']:>10.4f} {r.metrics['test_aiq']:>9.4f} {r.trials:>6}"
        )


@app.command("loop")
def loop_command(
    watch: Annotated[
        bool, typer.Option("--watch", help="Stay running: check every --interval and run the loop when it is due.")
    ] = False,
    min_feedback: Annotated[
        int | None,
        typer.Option(
            min=1, help="Run once this much new feedback arrived (default: loop.watch.min_feedback of params.yaml)."
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            help="Also run when this long passed since the last run and any new feedback arrived: seconds, "
            "or 30m, 6h, 1d; 'off' for no schedule (default: loop.watch.every)."
        ),
    ] = None,
    interval: Annotated[
        str | None, typer.Option(help="Time between checks: seconds, or 30s, 5m (default: loop.watch.interval).")
    ] = None,
    max_runs: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many runs, failed ones included (scripts, tests).")
    ] = None,
) -> None:
    """Run the loop once in the current project (dvc repro register), then promote the best evaluated version
    through the gate of 'routeiq promote'; a refusal keeps Production.

    With --watch: count the feedback that arrives in the traces and run the loop when enough is new, or when the
    schedule elapsed with some; one line per check and per run; Ctrl-C or SIGTERM stops between runs."""
    import time

    from pipelines import watch as watching
    from pipelines.loop_params import loop_params
    from pipelines.loop_run import run_once
    from registry import tracking

    given = {"--min-feedback": min_feedback, "--every": every, "--interval": interval, "--max-runs": max_runs}
    if not watch and (extra := [name for name, value in given.items() if value is not None]):
        raise CliError(
            f"{', '.join(extra)}: only with --watch; add --watch or drop {'them' if len(extra) > 1 else 'it'}"
        )
    root = Path.cwd()
    params = _watch_params(root / "params.yaml", min_feedback=min_feedback, every=every, interval=interval)
    loop = loop_params(root / "params.yaml")
    with registry_errors():
        tracking.configure()
    if not watch:
        with registry_errors():
            promotion = run_once(root, typer.echo)
        watching.record_run(root, loop, params, promotion, time.time())
        typer.echo(promotion.verdict)
        return
    watcher = watching.Watcher(root, loop, params, lambda echo: run_once(root, echo), typer.echo)
    typer.echo(watching.describe(loop, params))
    stop = watching.Stop()
    with watching.stopping_on_signals(stop):
        watching.watch(watcher, stop, max_runs)


def _watch_params(params_file: Path, **overrides: Any) -> Any:
    """`loop.watch` of params.yaml with the command's options; a bad option is a usage error naming it."""
    from pydantic import ValidationError

    from pipelines.watch import watch_params

    try:
        return watch_params(params_file, **overrides)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            if overrides.get(name) is not None:
                hint = f"'--{name.replace('_', '-')}'"
                raise typer.BadParameter(error["msg"].removeprefix("Value error, "), param_hint=hint) from exc
        raise


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Registered versions with family, metrics, stage and aliases."""
    from mlflow import MlflowClient

    from registry import tracking
    from registry.versions import list_versions

    tracking.configure()
    with registry_errors():
        versions = list_versions(MlflowClient())
    if as_json:
        typer.echo(json.dumps([v.__dict__ for v in versions], indent=2, default=list))
        return
    if not versions:
        typer.echo("no routing model registered yet; run 'routeiq train'")
        return
    typer.echo(f"{'version':>7} {'family':<22} {'valid AIQ':>9} {'test AIQ':>9} {'stage':<11} aliases")
    for v in versions:
        valid, test = v.metrics.get("valid_aiq", float("nan")), v.metrics.get("test_aiq", float("nan"))
        typer.echo(f"{v.version:>7} {v.family:<22} {valid:>9.4f} {test:>9.4f} {v.stage:<11} {','.join(v.aliases)}")


@app.command("promote")
def promote_command(
    version: Annotated[int | None, typer.Option(help="The version to promote.")] = None,
    best: Annotated[bool, typer.Option("--best", help="Promote the version with the best test AIQ.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Skip the gate (recorded on the version).")] = False,
    reason: Annotated[str, typer.Option(help="Why; recorded with the promotion.")] = "",
) -> None:
    """Move a version to Production (stage and alias) if it beats the current one on test AIQ."""
    from mlflow import MlflowClient

    from registry import tracking
    from registry.promotion import best_version, promote
    from registry.versions import get_version, list_versions

    if (version is None) == (not best):
        raise CliError("pass exactly one of --version N or --best")
    tracking.configure()
    client = MlflowClient()
    with registry_errors():
        candidate = best_version(list_versions(client)) if best else get_version(client, int(version or 0))
        done = promote(client, candidate, force=force, reason=reason)
    before = f"version {done.previous.version}" if done.previous else "nothing"
    typer.echo(
        f"promoted version {candidate.version} ({candidate.family}) to Production, replacing {before}"
        + (" (forced, recorded)" if force else "")
    )


@app.command("route")
def route_command(
    model_uri: Annotated[str, typer.Option(help="models:/routeiq-router/N, ...@production, or a local artifact.")],
    input: Annotated[Path, typer.Option("--input", help="JSONL of {id, prompt}.")],
    output: Annotated[Path, typer.Option(help="Decisions JSONL to write.")],
    candidates: Annotated[str | None, typer.Option(help="Comma-separated subset of the router's models.")] = None,
    cost_weight: Annotated[float, typer.Option(min=0.0, help="λ in argmax quality − λ·cost.")] = 0.0,
) -> None:
    """Route a file of prompts in batches and write the decisions format of `routeiq eval`."""
    from pipelines.route import route_file
    from registry import tracking
    from registry.loading import load_reference
    from routers.routing_model import RoutingModel

    tracking.configure()
    with registry_errors():
        loaded = load_reference(model_uri)
    model = RoutingModel(loaded.featurizer, loaded.router)
    chosen = [c.strip() for c in candidates.split(",")] if candidates else None
    count = route_file(model, input, output, chosen, cost_weight)
    typer.echo(f"routed {count} prompts with {loaded.meta['family']} → {output}")


@report_app.command("routers")
def report_routers(
    outcomes: Annotated[Path, typer.Option(help="Outcome table with train/valid/test splits.")] = DEFAULT_OUTCOMES,
    family: Annotated[str, typer.Option(help="A family, a comma-separated list, or 'all'.")] = "all",
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials per family.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the samplers and of every fit.")] = 0,
    doc: Annotated[Path, typer.Option(help="Markdown file whose results section is rewritten.")] = Path(
        "docs/routers.md"
    ),
) -> None:
    """Tune and score every family on the test split (overall and per task); rewrite the table in `doc`."""
    from pipelines import router_report
    from pipelines.train import resolve_families

    if not outcomes.is_file():
        raise CliError(f"outcome table {outcomes} not found; run 'dvc repro import' or 'routeiq data import'")
    results = router_report.run(outcomes, resolve_families(family), trials, seed, progress=typer.echo)
    table = router_report.render(results, trials)
    router_report.write_into(doc, table)
    typer.echo(table)
    typer.echo(f"wrote the results table into {doc}")


@report_app.command("families")
def report_families(
    doc: Annotated[Path, typer.Option(help="Markdown file whose families section is rewritten.")] = Path(
        "docs/routers.md"
    ),
) -> None:
    """Rewrite the per-family sections of `doc` from the registry: idea, source, features, hyper-parameters."""
    from pipelines import family_docs
    from routers.registry import FAMILIES

    family_docs.write_into(doc, family_docs.render())
    typer.echo(f"wrote {len(FAMILIES)} family sections into {doc}")


@report_app.command("gateway")
def report_gateway(
    doc: Annotated[Path, typer.Option(help="Markdown file whose generated sections are rewritten.")] = Path(
        "docs/gateway.md"
    ),
) -> None:
    """Rewrite the settings reference, span attribute table and metrics table of `doc` from the code."""
    from pipelines import gateway_docs

    gateway_docs.write_into(doc)
    typer.echo(f"wrote the gateway settings, span attributes and metrics into {doc}")


def main() -> None:
    """Entry point: run the CLI; a user error ends as one `error: ...` line on stderr and exit code 2."""
    sys.exit(run(app))


if __name__ == "__main__":
    main()
