"""A real (tiny) segment forecaster registered as a champion, for scoring tests."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from demand_forecasting.models.forecaster import fit_forecaster
from demand_forecasting.models.pyfunc import log_forecaster
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.registry import CHAMPION
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.mlflow_setup import ensure_experiment

TINY_RECIPE = Recipe(horizon=3, xgb_params={"n_estimators": 5, "max_depth": 2})


def register_champion(ctx: RunContext, name: str, history: pd.DataFrame, scratch: Path) -> str:
    """Fit a forecaster on ``history`` (series_id, month, y), log it as the pyfunc the
    train task logs, register it as ``name`` and make it the champion; return its version."""
    forecaster = fit_forecaster(history, TINY_RECIPE)
    folder = scratch / name
    forecaster.to_files(folder)
    # The experiment keeps its artifacts in the test's store (mlflow.set_experiment would
    # put them in ./mlruns of the working directory).
    experiment = ensure_experiment(
        ctx.mlflow, "/Shared/scoring-test", ctx.mlflow_store.artifact_root
    )
    with mlflow.start_run(experiment_id=experiment):
        uri = log_forecaster(folder, history.head(30))
    version = mlflow.register_model(uri, name)
    ctx.mlflow.set_registered_model_alias(name, CHAMPION, version.version)
    return str(version.version)
