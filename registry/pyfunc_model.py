"""Model-from-code entry point that MLflow executes when loading the routing pyfunc (no pickle)."""

import mlflow.models

from registry.pyfunc import RouterPyfunc

mlflow.models.set_model(RouterPyfunc())
