"""Gold features from silver, per series and month (pure).

Every feature of the row for month *t* uses ``y`` of months *t* and earlier only, never a later
month: ``lag_k`` is ``y`` of month *t-k*; ``roll_mean_k`` / ``roll_std_k`` are the mean and the
sample standard deviation of the non-null ``y`` over the *k* months ending at *t*, **including
y_t itself** (null until the series has *k* months of history, and the std also when fewer than
two values are present); ``yoy_growth`` is ``y_t / lag_12 - 1`` (null when either is null or
``lag_12`` is 0). So a row describes what is known at the end of its month: a model forecasting
month *t+h* uses the row of *t* as its origin, and must not use a row's features to predict
that same row's ``y`` (``roll_*`` and ``yoy_growth`` contain it).

Silver has a row for every month inside a series' span (gaps included), so "k rows back" is "k
months back". Calendar features (``month_of_year``, ``quarter``, ``year``) are of month *t*.
Every feature is a double.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

LAGS = (1, 2, 3, 6, 12)
WINDOWS = (3, 6, 12)
CALENDAR = ("month_of_year", "quarter", "year")


def feature_columns() -> list[str]:
    """The feature columns gold adds to silver, in order."""
    return [
        *[f"lag_{k}" for k in LAGS],
        *[f"roll_mean_{k}" for k in WINDOWS],
        *[f"roll_std_{k}" for k in WINDOWS],
        "yoy_growth",
        *CALENDAR,
    ]


def add_features(silver: DataFrame) -> DataFrame:
    """Silver plus lags, rolling statistics, year-on-year growth and calendar features."""
    by_month = Window.partitionBy("series_id").orderBy("month")
    y = F.col("y")
    lags = [F.lag(y, k).over(by_month).alias(f"lag_{k}") for k in LAGS]
    means, stds = [], []
    for k in WINDOWS:
        frame = by_month.rowsBetween(-(k - 1), Window.currentRow)
        full = F.count(F.lit(1)).over(frame) == k
        means.append(F.when(full, F.avg(y).over(frame)).alias(f"roll_mean_{k}"))
        stds.append(F.when(full, F.stddev_samp(y).over(frame)).alias(f"roll_std_{k}"))
    calendar = [
        F.month("month").cast("double").alias("month_of_year"),
        F.quarter("month").cast("double").alias("quarter"),
        F.year("month").cast("double").alias("year"),
    ]
    with_lags = silver.select("*", *lags, *means, *stds)
    return with_lags.select("*", _yoy_growth().alias("yoy_growth"), *calendar)


def _yoy_growth() -> Column:
    # try_divide: null instead of an error when lag_12 is 0 (Spark 4 runs in ANSI mode).
    return F.try_divide(F.col("y"), F.col("lag_12")) - F.lit(1.0)
