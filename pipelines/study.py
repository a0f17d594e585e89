"""Optuna studies of router families: search a family's declared space, objective = AIQ on the validation split.

Each trial is a nested MLflow run; the caller refits the best parameters and registers the result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import optuna
from pydantic import BaseModel

from registry import names
from routers.base import AnyRouter
from routers.dataset import TrainingSet
from routers.scoring import metrics_for

OBJECTIVE = "valid_aiq"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class StudyResult:
    """The best parameters of a study and how the search went."""

    params: BaseModel
    best_value: float
    trials: int
    pruned: int
    seconds: float


def fit_and_score(
    cls: type[AnyRouter],
    params: BaseModel,
    train: TrainingSet,
    valid: TrainingSet,
    seed: int,
    *,
    cost_weight: float = 0.0,
) -> tuple[AnyRouter, dict[str, float]]:
    """Fit one configuration and return it with its validation metrics (off-policy ones on logged traffic)."""
    router = cls(params, seed=seed).fit(train, valid)
    assert valid.features is not None
    return router, metrics_for(router.predict(valid.features), valid, "valid", cost_weight)


def run_study(
    cls: type[AnyRouter],
    train: TrainingSet,
    valid: TrainingSet,
    *,
    trials: int,
    seed: int,
    storage: str,
    study_name: str,
    progress: Progress,
    cost_weight: float = 0.0,
) -> StudyResult:
    """Search `cls.search_space` for `trials` trials; a fresh study each time so runs are repeatable."""
    started = time.perf_counter()
    with contextlib.suppress(KeyError):  # no such study yet
        optuna.delete_study(study_name=study_name, storage=storage)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    chosen: dict[int, BaseModel] = {}

    def objective(trial: optuna.Trial) -> float:
        params = cls.search_space(trial)
        chosen[trial.number] = params
        _, metrics = fit_and_score(cls, params, train, valid, seed, cost_weight=cost_weight)
        if mlflow.active_run() is not None:  # trials are nested runs of the family's run, when there is one
            with mlflow.start_run(run_name=f"{cls.family}-trial-{trial.number}", nested=True):
                mlflow.set_tag(names.TAG_KIND, names.KIND_TRIAL)
                mlflow.log_params(_flat(params))
                mlflow.log_metrics(metrics)
        value = metrics[OBJECTIVE]
        trial.report(value, step=0)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return value

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        best = study.best_value if study.best_trial is not None else float("nan")
        shown = "pruned" if trial.value is None else f"{OBJECTIVE}={trial.value:.4f}"
        progress(f"{cls.family}: trial {trial.number + 1}/{trials} {shown} (best {best:.4f})")

    study.optimize(objective, n_trials=trials, callbacks=[report], gc_after_trial=False)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return StudyResult(
        params=chosen[study.best_trial.number],
        best_value=float(study.best_value),
        trials=len(study.trials),
        pruned=pruned,
        seconds=time.perf_counter() - started,
    )


def _flat(params: BaseModel) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, list | dict | tuple) else v for k, v in params.model_dump(mode="json").items()}
