"""Train one segment, pandas in and one result row out: the body of the Spark group UDF.

:func:`segment_trainer` returns the function that ``groupBy("segment").applyInPandas`` runs
per segment (the same function runs in a plain loop for the sequential benchmark). It never
raises: a segment that fails comes back as a row with ``status = "failed"`` and the error,
so one bad segment does not stop the others.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable

import numpy as np
import pandas as pd

from demand_forecasting.models.backtest import NAIVE, backtest
from demand_forecasting.models.forecaster import fit_forecaster
from demand_forecasting.models.metrics import accuracy
from demand_forecasting.models.panel import panel_from_history
from demand_forecasting.models.plots import forecast_vs_actual_png
from demand_forecasting.models.recipe import Recipe

OK, FAILED = "ok", "failed"

#: Spark schema of a training result row.
RESULT_SCHEMA = (
    "segment string, status string, error string, booster binary, state string, "
    "metrics string, importance string, plot binary, example string, series_count int, "
    "training_rows int, trained_until date, fit_seconds double"
)
RESULT_COLUMNS = [part.strip().split(" ")[0] for part in RESULT_SCHEMA.split(",")]


def input_example(history: pd.DataFrame, months: int = 30) -> pd.DataFrame:
    """The newest ``months`` months of one series of ``history`` (enough for a forecast)."""
    first = sorted(history["series_id"].astype(str).unique())[0]
    one = history[history["series_id"].astype(str) == first].sort_values("month").tail(months)
    return pd.DataFrame(
        {
            "series_id": one["series_id"].astype(str).to_numpy(),
            "month": pd.to_datetime(one["month"]).to_numpy(),
            "y": one["y"].astype(float).to_numpy(),
        }
    )


def train_segment(segment: str, history: pd.DataFrame, recipe: Recipe) -> dict[str, object]:
    """Fit a segment's forecaster and describe it.

    Besides the final fit on all of ``history``, the recipe is refitted at one holdout
    origin (newest month minus the horizon) to give the run's metrics and plot.

    Returns:
        One result row (keys :data:`RESULT_COLUMNS`).
    """
    started = time.perf_counter()
    history = history[["series_id", "month", "y"]]
    panel = panel_from_history(history)
    forecaster = fit_forecaster(panel, recipe)
    forecast = forecaster.predict(panel)
    holdout_origin = panel.end - pd.DateOffset(months=recipe.horizon)
    holdout = backtest(panel, {"model": recipe}, [holdout_origin], recipe.horizon)
    metrics: dict[str, float] = {
        "series": float(len(panel.series)),
        "series_forecast": float(forecast["series_id"].nunique()),
        "training_rows": float(forecaster.training_rows),
    }
    if not holdout.empty:
        metrics.update(accuracy(holdout, "model").as_dict("holdout_"))
        metrics.update(accuracy(holdout, NAIVE).as_dict("holdout_naive_"))
    plot = forecast_vs_actual_png(
        history,
        holdout.rename(columns={"model": "forecast", NAIVE: "seasonal_naive"}),
        forecast,
        title=f"{segment}: holdout from {holdout_origin:%Y-%m} and forecast from {panel.end:%Y-%m}",
    )
    booster = forecaster.booster.save_raw("ubj") if forecaster.booster is not None else None
    return {
        "segment": segment,
        "status": OK,
        "error": None,
        "booster": bytes(booster) if booster is not None else None,
        "state": json.dumps(forecaster.state(), sort_keys=True),
        "metrics": json.dumps({k: v for k, v in metrics.items() if np.isfinite(v)}),
        "importance": json.dumps(forecaster.feature_importance()),
        "plot": plot,
        "example": input_example(history).to_json(orient="records", date_format="iso"),
        "series_count": len(panel.series),
        "training_rows": forecaster.training_rows,
        "trained_until": panel.end.date(),
        "fit_seconds": time.perf_counter() - started,
    }


def failed_row(segment: str, error: BaseException, seconds: float) -> dict[str, object]:
    """The result row of a segment whose training raised ``error``."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    row: dict[str, object] = dict.fromkeys(RESULT_COLUMNS)
    row.update(segment=segment, status=FAILED, error=text[:2000], fit_seconds=seconds)
    return row


def segment_trainer(recipe_json: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The per-segment function for ``applyInPandas`` (input: one segment's rows with
    ``segment, series_id, month, y``; output: one row of :data:`RESULT_SCHEMA`)."""

    def train(rows: pd.DataFrame) -> pd.DataFrame:
        segment = str(rows["segment"].iloc[0])
        started = time.perf_counter()
        try:
            result = train_segment(segment, rows, Recipe.from_json(recipe_json))
        except Exception as exc:  # reported by name on the driver; the others go on
            result = failed_row(segment, exc, time.perf_counter() - started)
        return pd.DataFrame([result], columns=RESULT_COLUMNS)

    return train
