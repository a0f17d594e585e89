"""The MLflow pyfunc wrapper of a routing model: prompts in, decisions out, with the artifact verified on load.

Logged as a model from code (registry/pyfunc_model.py), so MLflow never pickles it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from registry.names import ARTIFACT_DIR
from routers.artifact import load
from routers.routing_model import RoutingModel

PROMPT_COLUMN = "prompt"


class RouterPyfunc(PythonModel):
    """`predict(DataFrame[prompt], params={"cost_weight", "candidates"})` → a DataFrame of decisions."""

    def load_context(self, context: Any) -> None:
        loaded = load(Path(context.artifacts[ARTIFACT_DIR]))
        self.model = RoutingModel(loaded.featurizer, loaded.router)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        del context
        params = params or {}
        # The signature's default is [""] (MLflow needs a typed default): blank names mean "every candidate".
        candidates = [str(c) for c in params.get("candidates") or () if str(c)]
        decisions = self.model.decide(
            list(model_input[PROMPT_COLUMN].astype(str)),
            candidates=candidates or None,
            cost_weight=float(params.get("cost_weight", 0.0)),
        )
        return pd.DataFrame([d.as_record() for d in decisions])
