"""The plans of the planned covariates: what the company intends for the coming months.

A dataset's ``planned`` columns (price lists, promotion calendars) are known ahead. Their
plans arrive as files each month and land in :data:`demand_forecasting.names.PLANS`
(``series_id, month, <planned columns as double>, plan_month, source_file, load_time``),
restated every month, so several rows may hold one series' plan for one month. The plan that
counts is the newest: the row with the newest ``plan_month`` (the month the plan was issued),
then the newest ``load_time`` (a file landed again). Scoring reads the plans here and nowhere
else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.platform.context import RunContext

#: The columns of the plans table besides the planned covariates.
PLAN_KEYS = ("series_id", "month")
#: The columns that order a series' plans for one month: newest first wins.
PLAN_ORDER = ("plan_month", "load_time")


class PlansTableError(ValueError):
    """The plans table lacks a column the dataset's ``planned`` key names."""


def read_planned_covariates(
    ctx: RunContext, config: DatasetConfig, months: Sequence[date]
) -> pd.DataFrame:
    """The newest plan of each series for each of ``months``.

    Args:
        ctx: run context.
        config: the dataset config; its ``planned`` columns are read.
        months: first days of the months wanted (e.g. the H months after the run month).

    Returns:
        ``series_id`` (str), ``month`` (datetime64), one float column per planned covariate;
        one row per series and month that has a plan (a plan's value may be NaN).

    Raises:
        FileNotFoundError: the plans table does not exist (no plan was ever landed).
        PlansTableError: the table lacks a planned column.
    """
    table = ctx.table(names.PLANS)
    if not ctx.tables.exists(table):
        raise FileNotFoundError(
            f"plans table {table} does not exist: land the plan files of dataset "
            f"{config.name!r} (planned: {', '.join(config.planned)}) first"
        )
    plans = ctx.tables.read(table)
    missing = [c for c in (*PLAN_KEYS, *config.planned, *PLAN_ORDER) if c not in plans.columns]
    if missing:
        raise PlansTableError(
            f"plans table {table} lacks column(s) {missing} that dataset {config.name!r} "
            "needs (its `planned` key): land plans with every planned column, or drop the "
            "column from `planned`"
        )
    return (
        newest_plans(plans.where(F.col("month").isin(list(months))), config.planned)
        .toPandas()
        .pipe(_typed, config.planned)
    )


def newest_plans(plans: DataFrame, planned: Sequence[str]) -> DataFrame:
    """One row per (series, month): the newest ``plan_month``, then the newest ``load_time``."""
    newest_first = Window.partitionBy(*PLAN_KEYS).orderBy(*[F.col(c).desc() for c in PLAN_ORDER])
    return (
        plans.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .select(*PLAN_KEYS, *[F.col(c).cast("double").alias(c) for c in planned])
    )


def _typed(frame: pd.DataFrame, planned: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "series_id": frame["series_id"].astype(str),
            "month": pd.to_datetime(frame["month"]),
            **{c: pd.to_numeric(frame[c], errors="coerce").astype(float) for c in planned},
        }
    )
    return out.sort_values(["series_id", "month"], ignore_index=True)
