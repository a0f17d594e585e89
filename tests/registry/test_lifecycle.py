"""Train → register → list → promote through the gate → route, against a real MLflow store in a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from mlflow import MlflowClient

from features import schema
from pipelines.closed_loop import promote_best
from pipelines.outcomes import first_prompts, import_source, write_outcomes
from pipelines.provenance import file_hash
from pipelines.train import train
from registry import names
from registry.loading import load_reference
from registry.promotion import GateRefused, promote
from registry.versions import get_version, list_versions, production
from routers.routing_model import RoutingModel

PER_SPLIT = {schema.TRAIN: 150, schema.VALID: 40, schema.TEST: 60}


@pytest.fixture(scope="module")
def workspace(data_dir: Path, mlflow_workspace: Path) -> Path:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    write_outcomes(first_prompts(table, PER_SPLIT), mlflow_workspace / "outcomes.parquet")
    return mlflow_workspace


@pytest.fixture(scope="module")
def trained(workspace: Path) -> list:  # type: ignore[type-arg]
    lines: list[str] = []
    results = train(workspace / "outcomes.parquet", ["cheapest", "strongest"], trials=2, seed=0, progress=lines.append)
    assert any("trial 2/2" in line for line in lines)
    return results


def test_every_version_records_where_it_came_from(workspace: Path, trained: list) -> None:  # type: ignore[type-arg]
    client = MlflowClient()
    versions = list_versions(client)
    assert [v.family for v in versions] == ["strongest", "cheapest"]
    for v in versions:
        assert v.tags[names.TAG_DATA_HASH] == file_hash(workspace / "outcomes.parquet")
        commit = v.tags[names.TAG_GIT_COMMIT]
        assert commit == "unknown" or len(commit.removesuffix("-dirty")) == 40
        assert json.loads(v.tags[names.TAG_FEATURE_SPEC])["name"] == "fast"
        assert len(json.loads(v.tags[names.TAG_CANDIDATES])) == 11
        assert json.loads(v.tags[names.TAG_PARAMS]) == {}
        assert {"valid_aiq", "test_aiq", "test_oracle_aiq"} <= set(v.metrics)
        assert 0 < v.metrics["test_aiq"] <= v.metrics["test_oracle_aiq"]
    # Always answering with the best model beats always answering with the cheapest one on quality-per-cost area.
    assert versions[0].metrics["test_aiq"] > versions[1].metrics["test_aiq"]


def test_promotion_gate_stage_and_alias(workspace: Path, trained: list) -> None:  # type: ignore[type-arg]
    client = MlflowClient()
    strongest, cheapest = list_versions(client)
    promote(client, cheapest)
    assert production(client).version == cheapest.version  # type: ignore[union-attr]
    done = promote(client, strongest)
    assert done.previous is not None and done.previous.version == cheapest.version
    assert get_version(client, cheapest.version).stage == names.ARCHIVED_STAGE
    now = get_version(client, strongest.version)
    assert now.stage == names.PRODUCTION_STAGE and names.PRODUCTION_ALIAS in now.aliases
    with pytest.raises(GateRefused, match="does not beat Production"):
        promote(client, get_version(client, cheapest.version))
    assert production(client).version == strongest.version  # type: ignore[union-attr]
    forced = promote(client, get_version(client, cheapest.version), force=True, reason="rollback drill")
    assert forced.forced
    tags = get_version(client, cheapest.version).tags
    assert tags[names.TAG_PROMOTION_FORCED] == "true" and tags[names.TAG_PROMOTION_REASON] == "rollback drill"
    promote(client, get_version(client, strongest.version))


def test_route_cli_matches_in_process_decisions(workspace: Path, trained: list) -> None:  # type: ignore[type-arg]
    client = MlflowClient()
    promote(client, list_versions(client)[0], force=True)
    table = pa.Table.from_pylist(
        [r for r in __import__("pyarrow.parquet").parquet.read_table(workspace / "outcomes.parquet").to_pylist()]
    )
    test = table.filter(pc.equal(table[schema.SPLIT], schema.TEST))
    seen: dict[str, str] = {}
    for pid, prompt in zip(test[schema.PROMPT_ID].to_pylist(), test[schema.PROMPT].to_pylist(), strict=True):
        seen.setdefault(pid, prompt)
    source = workspace / "prompts.jsonl"
    source.write_text("".join(json.dumps({"id": k, "prompt": v}) + "\n" for k, v in seen.items()))
    pair = "mistralai/mixtral-8x7b-chat,gpt-3.5-turbo-1106"
    exe = shutil.which("routeiq", path=str(Path(sys.executable).parent))
    assert exe is not None
    done = subprocess.run(
        [
            exe,
            "route",
            "--model-uri",
            f"models:/{names.REGISTERED_MODEL}@{names.PRODUCTION_ALIAS}",
            "--input",
            str(source),
            "--output",
            "out.jsonl",
            "--candidates",
            pair,
            "--cost-weight",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (workspace / "out.jsonl").read_text().splitlines()]
    assert [d["id"] for d in lines] == list(seen)
    assert all(set(d["quality"]) == set(pair.split(",")) for d in lines)
    loaded = load_reference(f"models:/{names.REGISTERED_MODEL}@{names.PRODUCTION_ALIAS}")
    expected = RoutingModel(loaded.featurizer, loaded.router).decide(list(seen.values()), pair.split(","), 50.0)
    assert [d["model"] for d in lines] == [d.model for d in expected]
    assert np.allclose(
        [d["quality"]["gpt-3.5-turbo-1106"] for d in lines],
        [d.quality["gpt-3.5-turbo-1106"] for d in expected],
    )


def test_a_refused_promotion_ends_in_a_verdict_and_keeps_production(workspace: Path, trained: list) -> None:  # type: ignore[type-arg]
    client = MlflowClient()
    strongest, cheapest = list_versions(client)
    promote(client, get_version(client, strongest.version), force=True, reason="set up the refusal")
    evaluation = {"best": "cheapest", "families": {}}
    outcome = promote_best(evaluation, {"versions": {"cheapest": cheapest.version}})
    assert outcome.family is None and outcome.version is None
    assert outcome.verdict.startswith(f"nothing promoted: the gate refused cheapest v{cheapest.version}")
    assert "does not beat Production" in outcome.verdict and "\n" not in outcome.verdict
    assert production(client).version == strongest.version  # type: ignore[union-attr]
    nothing = promote_best({"best": None, "verdict": "no family beats the logging policy"}, {"versions": {}})
    assert nothing.version is None and nothing.verdict == "nothing promoted: no family beats the logging policy"


def test_the_pyfunc_serves_with_the_signature_defaults(workspace: Path, trained: list) -> None:  # type: ignore[type-arg]
    """MLflow fills in the signature's `candidates` default ([""]) when none are given, as its own input-example
    validation at registration does: that means every candidate, not an error."""
    import mlflow.pyfunc
    import pandas as pd

    strongest = list_versions(MlflowClient())[0]
    model = mlflow.pyfunc.load_model(f"models:/{names.REGISTERED_MODEL}/{strongest.version}")
    prompts = pd.DataFrame({"prompt": ["What is 2 + 2?", "Name a prime number."]})
    every = model.predict(prompts)
    assert every["model"].nunique() == 1 and every["model"][0] in json.loads(strongest.tags[names.TAG_CANDIDATES])
    assert list(model.predict(prompts, params={"candidates": [""]})["model"]) == list(every["model"])
    narrowed = model.predict(prompts, params={"candidates": ["mistralai/mixtral-8x7b-chat"]})
    assert set(narrowed["model"]) == {"mistralai/mixtral-8x7b-chat"}
