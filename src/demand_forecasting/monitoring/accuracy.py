"""Forecast accuracy once actuals arrive: WAPE and bias per segment, month and horizon.

Pure: Spark DataFrames in, DataFrames out (and pandas for the alert rule).

- ``wape = sum |forecast - actual| / sum |actual|`` over the segment's series;
- ``bias = sum (forecast - actual) / sum |actual|`` (positive: over-forecast).

Both are weighted by volume, so large series count more, as they do for the business.

- ``interval_coverage``: the share of actuals inside their forecast interval
  (``forecast_lower .. forecast_upper``, nominal 80 %, see
  :mod:`demand_forecasting.models.intervals`), over the rows that have one. Far below the
  nominal level, the intervals are too narrow for safety stock; far above, too wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ACCURACY_COLUMNS = (
    "segment",
    "month",
    "horizon",
    "run_month",
    "model_versions",
    "n_series",
    "actual_sum",
    "forecast_sum",
    "abs_error_sum",
    "error_sum",
    "wape",
    "bias",
    "interval_rows",
    "interval_hits",
    "interval_coverage",
)


def forecast_errors(forecasts: DataFrame, actuals: DataFrame) -> DataFrame:
    """Forecast rows joined with the actual of their month (rows without one dropped).

    Args:
        forecasts: ``segment, series_id, month, horizon, run_month, forecast,
            forecast_lower, forecast_upper, model_version``.
        actuals: ``series_id, month, y`` (null ``y``, a gap, is no actual).
    """
    known = actuals.where(F.col("y").isNotNull()).select(
        "series_id", "month", F.col("y").alias("actual")
    )
    return forecasts.join(known, ["series_id", "month"]).withColumn(
        "error", F.col("forecast") - F.col("actual")
    )


def accuracy_by_segment(errors: DataFrame) -> DataFrame:
    """WAPE, bias and interval coverage per (segment, month, horizon), columns
    :data:`ACCURACY_COLUMNS`."""
    lower, upper = (
        F.col(c) if c in errors.columns else F.lit(None).cast("double")
        for c in ("forecast_lower", "forecast_upper")
    )
    actual = F.col("actual")
    has_interval = lower.isNotNull() & upper.isNotNull() & ~F.isnan(lower) & ~F.isnan(upper)
    inside = (actual >= lower) & (actual <= upper)
    grouped = errors.groupBy("segment", "month", "horizon").agg(
        F.min("run_month").alias("run_month"),
        F.array_join(F.array_sort(F.collect_set("model_version")), ",").alias("model_versions"),
        F.countDistinct("series_id").alias("n_series"),
        F.sum(F.abs("actual")).alias("actual_sum"),
        F.sum("forecast").alias("forecast_sum"),
        F.sum(F.abs("error")).alias("abs_error_sum"),
        F.sum("error").alias("error_sum"),
        F.count(F.when(has_interval, 1)).alias("interval_rows"),
        F.count(F.when(has_interval & inside, 1)).alias("interval_hits"),
    )
    denominator = F.when(F.col("actual_sum") > 0, F.col("actual_sum"))
    derived = ("wape", "bias", "interval_coverage")
    return grouped.select(
        *[c for c in ACCURACY_COLUMNS if c not in derived],
        (F.col("abs_error_sum") / denominator).alias("wape"),
        (F.col("error_sum") / denominator).alias("bias"),
        (F.col("interval_hits") / F.when(F.col("interval_rows") > 0, F.col("interval_rows"))).alias(
            "interval_coverage"
        ),
    )


@dataclass(frozen=True)
class AccuracyAlert:
    """A segment whose recent accuracy is worse than the threshold."""

    segment: str
    wape: float
    bias: float
    first_month: date
    last_month: date
    threshold: float

    def describe(self) -> str:
        """One line for the log and the report."""
        span = f"{self.first_month:%Y-%m}..{self.last_month:%Y-%m}"
        return (
            f"{self.segment}: WAPE {self.wape:.1%} (bias {self.bias:+.1%}) over {span} "
            f"> {self.threshold:.1%}"
        )


def recent_accuracy(
    accuracy: pd.DataFrame, horizon: int = 1, window_months: int = 3
) -> pd.DataFrame:
    """Pooled WAPE and bias per segment over the newest ``window_months`` evaluated months,
    and the interval coverage of every forecast (any horizon) of those months.

    Args:
        accuracy: rows with :data:`ACCURACY_COLUMNS`.
        horizon: which horizon to judge (1: the forecast made a month before).
        window_months: newest evaluated target months pooled (volume-weighted).

    Returns:
        ``segment, wape, bias, interval_coverage, first_month, last_month, months`` (empty
        if nothing evaluated; coverage NaN where no forecast had an interval).
    """
    columns = [
        "segment",
        "wape",
        "bias",
        "interval_coverage",
        "first_month",
        "last_month",
        "months",
    ]
    rows = accuracy[accuracy["horizon"] == horizon]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    months = sorted(rows["month"].unique())[-window_months:]
    recent = rows[rows["month"].isin(months)]
    pooled = recent.groupby("segment", sort=True).agg(
        actual_sum=("actual_sum", "sum"),
        abs_error_sum=("abs_error_sum", "sum"),
        error_sum=("error_sum", "sum"),
        first_month=("month", "min"),
        last_month=("month", "max"),
        months=("month", "nunique"),
    )
    actual = pooled["actual_sum"].where(pooled["actual_sum"] > 0)
    pooled["wape"] = pooled["abs_error_sum"] / actual
    pooled["bias"] = pooled["error_sum"] / actual
    # Coverage over every horizon that targeted those months (one horizon is too few rows).
    targeted = accuracy[accuracy["month"].isin(months)].groupby("segment", sort=True)
    hits, counted = targeted["interval_hits"].sum(), targeted["interval_rows"].sum()
    pooled["interval_coverage"] = hits / counted.where(counted > 0)
    return pooled.reset_index()[columns]


def accuracy_alerts(
    accuracy: pd.DataFrame, threshold: float, horizon: int = 1, window_months: int = 3
) -> list[AccuracyAlert]:
    """Segments whose pooled recent WAPE (see :func:`recent_accuracy`) exceeds ``threshold``.

    Raises:
        ValueError: ``threshold`` is not positive.
    """
    if threshold <= 0:
        raise ValueError(f"accuracy_alert_wape={threshold}: must be > 0 (e.g. 0.15 for 15%)")
    recent = recent_accuracy(accuracy, horizon, window_months)
    alerts = []
    for row in recent.to_dict("records"):
        wape = float(row["wape"])
        if wape == wape and wape > threshold:  # NaN (no actual volume) never alerts
            alerts.append(
                AccuracyAlert(
                    str(row["segment"]),
                    wape,
                    float(row["bias"]),
                    row["first_month"],
                    row["last_month"],
                    threshold,
                )
            )
    return sorted(alerts, key=lambda a: -a.wape)
