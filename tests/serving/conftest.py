"""Fixtures for gateway tests that need a real gateway on loopback: a tiny replay upstream and a factory
that starts the gateway with a config dict (master key and `routeiq_settings.access` chosen per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.prompt import prompt_id
from features.schema import OUTCOME_SCHEMA, conform
from serving.config import parse_config
from serving.replay import ReplaySettings
from serving.replay import running as replay_running
from serving.server import running

UPSTREAM_MODELS = ("alpha", "beta")
PROMPT = "What is 2 + 2? Answer with one sentence."

GatewayFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture(scope="module")
def replay_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A replay provider answering PROMPT as `alpha` and `beta`."""
    path = write_outcomes(tmp_path_factory.mktemp("replay") / "outcomes.parquet")
    with replay_running(ReplaySettings(outcomes=path)) as url:
        yield url


def write_outcomes(path: Path, response: str = "4, says {model}") -> Path:
    """An outcomes file with one answer to PROMPT per upstream model (`response` formatted with the model's name),
    for a replay provider."""
    rows = [
        {
            "prompt_id": prompt_id(PROMPT),
            "prompt": PROMPT,
            "task": "test",
            "model": model,
            "quality": 1.0,
            "cost_usd": 0.001,
            "cost_source": "recorded",
            "input_tokens": 10,
            "output_tokens": 2,
            "response": response.format(model=model),
            "source": "unit",
            "split": "test",
        }
        for model in UPSTREAM_MODELS
    ]
    pq.write_table(conform(pa.Table.from_pylist(rows, schema=OUTCOME_SCHEMA)), path)
    return path


@pytest.fixture
def start_gateway(replay_upstream: str, mlflow_workspace: Path, tmp_path: Path) -> GatewayFactory:
    """`start(master_key=..., access={...})`: a context manager serving a gateway, yielding its base URL."""

    @contextmanager
    def start(
        master_key: str | None = None, access: dict[str, Any] | None = None, routing: dict[str, Any] | None = None
    ) -> Iterator[str]:
        config = {
            "model_list": [
                {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": replay_upstream}}
                for m in UPSTREAM_MODELS
            ],
            "general_settings": {"master_key": master_key} if master_key else {},
            "routeiq_settings": {
                "security": {"upstream_allowlist": ["127.0.0.0/8"]},
                "telemetry": {"directory": str(tmp_path / "traces")},
                "access": access if access is not None else default_access(tmp_path),
                "routing": routing or {},
            },
        }
        with running(parse_config(config)) as url:
            yield url

    return start


def default_access(folder: Path) -> dict[str, Any]:
    """Key store and audit log as files in `folder`."""
    return {"key_store": str(folder / "keys.sqlite"), "audit": {"path": str(folder / "audit.sqlite")}}


def save_two_model_router(data_dir: Path, directory: Path, family: str) -> Path:
    """A router of `family` fitted on 40 RouterBench prompts of two recorded models renamed to the upstream's
    `alpha` and `beta`, saved as an artifact directory (which `routing.reference` accepts)."""
    import pyarrow.compute as pc

    from features import schema
    from features.registry import build
    from pipelines.outcomes import first_prompts, import_source
    from routers.artifact import save
    from routers.dataset import training_set
    from routers.registry import family_class

    table, _ = import_source("routerbench", data_dir / "routerbench")
    table = first_prompts(table, {schema.TRAIN: 40})
    names = {"gpt-4-1106-preview": "alpha", "claude-instant-v1": "beta"}
    table = table.filter(pc.is_in(table[schema.MODEL], pa.array(list(names))))
    renamed = pa.array([names[m] for m in table[schema.MODEL].to_pylist()])
    train = training_set(table.set_column(table.schema.get_field_index(schema.MODEL), schema.MODEL, renamed))
    featurizer = build("fast").fit(list(train.prompts))
    cls = family_class(family)
    router = cls(cls.Params(), seed=0).fit(train.with_features(featurizer.transform(list(train.prompts))))
    save(directory, router, featurizer)
    return directory
