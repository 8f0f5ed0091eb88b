"""Train one segment, pandas in and one result row out: the body of the Spark group UDF.

:func:`segment_trainer` returns the function that ``groupBy("segment").applyInPandas`` runs
per segment (the same function runs in a plain loop for the sequential benchmark). It never
raises: a segment that fails comes back as a row with ``status = "failed"`` and the error,
so one bad segment does not stop the others.

Besides the final fit, the worker runs the candidate's rolling-origin backtest (the last K
full-horizon origins, with seasonal naive on the same rows): it is the evidence
``validate_models`` gates on, computed once here, where the data already sits, instead of a
second pass over every segment. Its errors also give the model its forecast interval
(:mod:`demand_forecasting.models.intervals`). The plot shows the newest backtest origin.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from demand_forecasting.models import intervals
from demand_forecasting.models.backtest import NAIVE, backtest, backtest_origins, comparable
from demand_forecasting.models.features import MIN_HISTORY_MONTHS
from demand_forecasting.models.forecaster import SegmentForecaster, fit_forecaster
from demand_forecasting.models.metrics import GATE_METRICS_VERSION, segment_accuracy
from demand_forecasting.models.panel import (
    HISTORY_COLUMNS,
    PLAN_FLAG,
    Panel,
    panel_from_history,
)
from demand_forecasting.models.plots import forecast_vs_actual_png
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.segment_evaluation import CANDIDATE

OK, FAILED = "ok", "failed"

#: Spark schema of a training result row.
RESULT_SCHEMA = (
    "segment string, status string, error string, booster binary, state string, "
    "metrics string, importance string, plot binary, example string, backtest string, "
    "series_count int, training_rows int, trained_until date, fit_seconds double"
)
RESULT_COLUMNS = [part.strip().split(" ")[0] for part in RESULT_SCHEMA.split(",")]


def input_example(
    history: pd.DataFrame, months: int = 30, covariates: Sequence[str] = (), horizon: int = 0
) -> pd.DataFrame:
    """The newest ``months`` months of one series of ``history`` (enough for a forecast).

    With planned ``covariates``, the example carries them and, flagged ``is_plan``, a plan
    for each of the ``horizon`` months after the history: the series' newest values (what a
    plan file could say), so that the example forecasts as scoring does.
    """
    first = sorted(history["series_id"].astype(str).unique())[0]
    one = history[history["series_id"].astype(str) == first].sort_values("month").tail(months)
    example = pd.DataFrame(
        {
            "series_id": one["series_id"].astype(str).to_numpy(),
            "month": pd.to_datetime(one["month"]).to_numpy(),
            "y": one["y"].astype(float).to_numpy(),
        }
    )
    if not covariates:
        return example
    for c in covariates:
        example[c] = one[c].astype(float).to_numpy()
    example[PLAN_FLAG] = False
    newest = example["month"].max()
    plans = pd.DataFrame(
        {
            "series_id": first,
            "month": pd.date_range(newest + pd.DateOffset(months=1), periods=horizon, freq="MS"),
            "y": np.nan,
            **{c: example[c].ffill().iloc[-1] for c in covariates},
            PLAN_FLAG: True,
        }
    )
    return pd.concat([example, plans], ignore_index=True)


def read_input_example(text: str) -> pd.DataFrame:
    """The input example from the JSON text a training result row carries (``example``).

    The column types are given, not inferred: pandas would read a ``y`` of whole numbers
    (counts such as scripts or units) as int64, which the model signature's double refuses,
    and a ``series_id`` such as ``001`` as the number 1. Planned covariates (every column
    but the history's and :data:`~.panel.PLAN_FLAG`) are doubles too.
    """
    frame = pd.read_json(
        io.StringIO(text),
        orient="records",
        convert_dates=["month"],
        dtype={"series_id": "str", "y": "float64"},
    )
    extra = [c for c in frame.columns if c not in (*HISTORY_COLUMNS, PLAN_FLAG)]
    frame[extra] = frame[extra].astype("float64")
    if PLAN_FLAG in frame.columns:
        frame[PLAN_FLAG] = frame[PLAN_FLAG].astype(bool)
    return frame


def backtest_summary(
    frame: pd.DataFrame, origins: list[pd.Timestamp], horizon: int
) -> dict[str, object]:
    """The candidate's and seasonal naive's accuracy over the rows both forecast.

    Returns:
        JSON-ready ``{"origins", "first_origin", "last_origin", "horizon", "candidate",
        "naive", "metrics_version"}``; ``candidate`` and ``naive`` are
        :class:`~demand_forecasting.models.metrics.Accuracy` fields (``mase, wape, bias,
        pairs``), ``metrics_version`` the definition they were computed with
        (:data:`~demand_forecasting.models.metrics.GATE_METRICS_VERSION`).
    """
    rows = comparable(frame, [CANDIDATE, NAIVE])
    return {
        "origins": len(origins),
        "first_origin": f"{origins[0]:%Y-%m-%d}",
        "last_origin": f"{origins[-1]:%Y-%m-%d}",
        "horizon": horizon,
        CANDIDATE: segment_accuracy(rows, CANDIDATE).__dict__,
        "naive": segment_accuracy(rows, NAIVE).__dict__,
        "metrics_version": GATE_METRICS_VERSION,
    }


def fit_and_backtest(
    panel: Panel, recipe: Recipe, origins: int
) -> tuple[SegmentForecaster, pd.DataFrame, list[pd.Timestamp]]:
    """The segment's model fitted on all of ``panel``, with the interval its backtest gives.

    Returns:
        The forecaster (``interval`` set, see :mod:`.intervals`), the backtest frame of the
        candidate and seasonal naive, and the backtest's origins.
    """
    forecaster = fit_forecaster(panel, recipe)
    chosen = backtest_origins(panel.end, recipe.horizon, origins)
    frame = backtest(panel, {CANDIDATE: recipe}, chosen, recipe.horizon)
    # The backtest's errors are the spread of the model's forecasts.
    forecaster.interval = intervals.from_backtest(frame, CANDIDATE, recipe.horizon)
    return forecaster, frame, chosen


def train_segment(
    segment: str, history: pd.DataFrame, recipe: Recipe, origins: int = 6
) -> dict[str, object]:
    """Fit a segment's forecaster, backtest its recipe, and describe it.

    Besides the final fit on all of ``history``, the recipe is backtested on the last
    ``origins`` full-horizon origins against seasonal naive (fitted once at the oldest
    origin, forecasting from each); the figures are the run's metrics and validation's
    evidence, the newest origin is plotted.

    Returns:
        One result row (keys :data:`RESULT_COLUMNS`).
    """
    started = time.perf_counter()
    covariates = recipe.covariates
    history = history[[*HISTORY_COLUMNS, *covariates]]
    panel = panel_from_history(history, covariates)
    if len(panel.months) < MIN_HISTORY_MONTHS:
        # The model's features look N_LAGS months back: a new segment (or one whose earlier
        # months were never landed) cannot be fitted, nor forecast from, before that.
        # (check_drift does not choose such a segment: it waits, decision wait_history.)
        ready = panel.months[0] + pd.DateOffset(months=MIN_HISTORY_MONTHS - 1)
        raise ValueError(
            f"segment {segment} has {len(panel.months)} month(s) of history "
            f"({panel.months[0]:%Y-%m} .. {panel.end:%Y-%m}); a model needs at least "
            f"{MIN_HISTORY_MONTHS}: land the segment's earlier months (a file of its "
            f"history), or it cannot train (nor be forecast) until {ready:%Y-%m}"
        )
    forecaster, frame, chosen = fit_and_backtest(panel, recipe, origins)
    summary = backtest_summary(frame, chosen, recipe.horizon)
    # No plans at training: the plot's forecast stands in every plan (marked plan_missing).
    forecast = forecaster.predict(panel.with_unknown_plans(recipe.horizon))
    metrics: dict[str, float] = {
        "series": float(len(panel.series)),
        "series_forecast": float(forecast["series_id"].nunique()),
        "training_rows": float(forecaster.training_rows),
    }
    for method, prefix in ((CANDIDATE, "backtest_"), ("naive", "backtest_naive_")):
        figures = summary[method]
        assert isinstance(figures, dict)
        metrics.update({f"{prefix}{k}": float(v) for k, v in figures.items()})
    newest = frame[frame["origin"] == chosen[-1]]
    plot = forecast_vs_actual_png(
        history,
        newest.rename(columns={CANDIDATE: "forecast", NAIVE: "seasonal_naive"}),
        forecast,
        title=f"{segment}: backtest from {chosen[-1]:%Y-%m} and forecast from {panel.end:%Y-%m}",
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
        "example": input_example(history, covariates=covariates, horizon=recipe.horizon).to_json(
            orient="records", date_format="iso"
        ),
        "backtest": json.dumps(summary, sort_keys=True),
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


def segment_trainer(recipe_json: str, origins: int = 6) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The per-segment function for ``applyInPandas`` (input: one segment's rows with
    ``segment, series_id, month, y``; output: one row of :data:`RESULT_SCHEMA`); ``origins``
    is the backtest's K."""

    def train(rows: pd.DataFrame) -> pd.DataFrame:
        segment = str(rows["segment"].iloc[0])
        started = time.perf_counter()
        try:
            result = train_segment(segment, rows, Recipe.from_json(recipe_json), origins)
        except Exception as exc:  # reported by name on the driver; the others go on
            result = failed_row(segment, exc, time.perf_counter() - started)
        return pd.DataFrame([result], columns=RESULT_COLUMNS)

    return train
