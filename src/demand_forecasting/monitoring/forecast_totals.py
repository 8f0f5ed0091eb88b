"""The run report's figures from the forecast table: this run's totals per segment and
month, how many series were forecast, the model versions per run month, and earlier runs'
one-month-ahead forecasts.

Two ways to the same figures: :func:`forecast_totals` in pandas from the collected rows (few
rows: one Spark job instead of four) and :func:`spark_forecast_totals` as Spark aggregates
(many rows: only segment-level rows reach the driver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from demand_forecasting.data.config import add_month


@dataclass
class ForecastTotals:
    """The report's figures from the forecast table.

    Attributes:
        current: this run month's forecast per segment and month (``segment, month,
            forecast``).
        series_count: how many series were forecast this run month.
        versions: ``segment, run_month, model_version`` combinations, for
            :func:`demand_forecasting.monitoring.monitor.new_champions`.
        past: earlier runs' one-month-ahead forecasts per segment and month within the
            history shown (``segment, month, forecast``).
        series: the series forecast this run month (from :func:`forecast_totals` only).
        series_per_segment: how many series each segment forecast this run month.
    """

    current: pd.DataFrame
    series_count: int
    versions: pd.DataFrame
    past: pd.DataFrame
    series: set[str] = field(default_factory=set)
    series_per_segment: dict[str, int] = field(default_factory=dict)


def forecast_totals(
    forecasts: pd.DataFrame, run_month: date, history_months: int
) -> ForecastTotals:
    """:class:`ForecastTotals` from the forecast rows (pure pandas; sums skip missing values
    and are missing when every value is, as Spark's ``sum``).

    Args:
        forecasts: ``segment, series_id, month, horizon, run_month, forecast,
            model_version``.
        history_months: how far back earlier forecasts are shown (months before
            ``run_month``, exclusive).
    """
    since = add_month(run_month, -history_months)
    this_run = forecasts[forecasts["run_month"] == run_month]
    earlier = forecasts[
        (forecasts["horizon"] == 1)
        & (forecasts["run_month"] < run_month)
        & (forecasts["month"] > since)
    ]

    def by_segment_month(rows: pd.DataFrame) -> pd.DataFrame:
        if rows.empty:
            return pd.DataFrame(columns=["segment", "month", "forecast"])
        return rows.groupby(["segment", "month"])["forecast"].sum(min_count=1).reset_index()

    series = set(this_run["series_id"].dropna())
    per_segment = this_run.dropna(subset=["series_id"]).groupby("segment")["series_id"].nunique()
    return ForecastTotals(
        current=by_segment_month(this_run),
        series_count=len(series),
        versions=forecasts[["segment", "run_month", "model_version"]].drop_duplicates(),
        past=by_segment_month(earlier),
        series=series,
        series_per_segment={str(k): int(v) for k, v in per_segment.items()},
    )


def spark_forecast_totals(forecasts: DataFrame, run_month: date, since: Column) -> ForecastTotals:
    """:func:`forecast_totals` as Spark aggregates (only segment-level rows are collected)."""
    this_run = forecasts.where(F.col("run_month") == F.lit(run_month))
    earlier = forecasts.where(
        (F.col("horizon") == 1) & (F.col("run_month") < F.lit(run_month)) & (F.col("month") > since)
    )
    counted = this_run.agg(F.countDistinct("series_id")).first()
    per_segment = this_run.groupBy("segment").agg(F.countDistinct("series_id")).collect()
    return ForecastTotals(
        current=this_run.groupBy("segment", "month")
        .agg(F.sum("forecast").alias("forecast"))
        .toPandas(),
        series_count=int(counted[0]) if counted else 0,
        versions=forecasts.select("segment", "run_month", "model_version").distinct().toPandas(),
        past=earlier.groupBy("segment", "month")
        .agg(F.sum("forecast").alias("forecast"))
        .toPandas(),
        series_per_segment={str(r[0]): int(r[1]) for r in per_segment},
    )
