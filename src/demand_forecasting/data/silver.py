"""Silver: one row per series per month, the latest load winning, gaps made explicit (pure).

A month missing inside a series' span (between its first and last month) becomes a row with
``y`` null and ``is_gap`` true; months before a series starts or after its latest month are not
invented (a series that stopped stays stopped). A series' attributes (keys, segment) are taken
from its latest month, so a gap row carries them too.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from demand_forecasting.data.config import DatasetConfig

#: Lineage columns of the winning row (null on gap rows).
LINEAGE = ("batch_id", "source_file", "load_time")


def silver_columns(config: DatasetConfig) -> list[str]:
    """Silver's columns, in order."""
    return [
        "series_id",
        *series_attributes(config),
        "month",
        "y",
        "is_gap",
        *config.exogenous,
        *LINEAGE,
    ]


def series_attributes(config: DatasetConfig) -> list[str]:
    """Columns that describe a series rather than a month: its keys and its segment."""
    return [*dict.fromkeys([*config.series_keys, *config.segment_attributes]), "segment"]


def latest_load_wins(validated: DataFrame) -> DataFrame:
    """Keep one row per (series_id, month): the latest ``load_time``, then batch, then the
    file whose name sorts last (within a batch, ``<prefix>_<YYYY-MM>_correction.csv`` over
    ``<prefix>_<YYYY-MM>.csv``, and a later month's correction over an earlier one's)."""
    order = Window.partitionBy("series_id", "month").orderBy(
        F.col("load_time").desc(), F.col("batch_id").desc(), F.col("source_file").desc()
    )
    ranked = validated.withColumn("_rank", F.row_number().over(order))
    return ranked.where(F.col("_rank") == 1).drop("_rank")


def fill_gaps(rows: DataFrame, attributes: list[str], spans: DataFrame | None = None) -> DataFrame:
    """Add a row for every missing month inside each series' span (``is_gap`` true, ``y`` null).

    Args:
        rows: one row per (series_id, month).
        attributes: per-series columns copied onto every month (from the series' latest row).
        spans: ``series_id, _first, _last`` months to cover (default: each series' own first
            and last month in ``rows``); an incremental update passes the months it rewrites.
    """
    latest = rows.groupBy("series_id").agg(
        F.min("month").alias("_first"),
        F.max("month").alias("_last"),
        *[F.max_by(a, "month").alias(a) for a in attributes],
    )
    if spans is not None:
        latest = latest.drop("_first", "_last").join(spans, "series_id")
    calendar = latest.select(
        "series_id",
        *attributes,
        F.explode(F.sequence("_first", "_last", F.expr("INTERVAL 1 MONTH"))).alias("month"),
    )
    measured = rows.drop(*attributes).withColumn("_measured", F.lit(True))
    joined = calendar.join(measured, ["series_id", "month"], "left")
    return joined.withColumn("is_gap", F.col("_measured").isNull()).drop("_measured")


def build_silver(
    validated: DataFrame, config: DatasetConfig, spans: DataFrame | None = None
) -> DataFrame:
    """Silver rows from validated rows: latest load wins, gaps explicit, columns in order.

    Args:
        validated: validated rows (all of a series' history, or its months from a span start).
        config: the dataset config (which columns are series attributes).
        spans: see :func:`fill_gaps`.
    """
    attributes = series_attributes(config)
    rows = latest_load_wins(validated)
    return fill_gaps(rows, attributes, spans).select(*silver_columns(config))
