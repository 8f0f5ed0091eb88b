"""The models' input: each segment's history from the gold feature table, pinned to a version.

Train and validate read the same thing: ``segment, series_id, month, y`` of the gold feature
table (:data:`demand_forecasting.names.FEATURES`) at one Delta version, which every model
version and evaluation row records, and for a recipe with planned covariates their columns
(the actual values: the history the model learns them from). Models compute their own
features from this history (``models.features``), so training, backtests and scoring share
one feature code path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("segment", "series_id", "month", "y")


class SegmentSelectionError(ValueError):
    """A segments parameter names segments the feature table does not have, or is malformed."""


@dataclass(frozen=True)
class SegmentHistory:
    """The feature table's rows for some segments, at one Delta version."""

    table: str
    version: int
    frame: DataFrame
    segments: tuple[str, ...]


def parse_segments(text: str | None) -> tuple[str, ...] | None:
    """Parse a ``--segments`` value: ``all`` (None), ``a,b,c`` or a JSON list.

    Scripts pass a JSON list; people type a comma list (the job passes ``from-check-drift``
    to train, see :mod:`demand_forecasting.models.train`).

    Raises:
        SegmentSelectionError: the text is empty, or JSON that is not a list of strings.
    """
    if text is None or text.strip().lower() in ("all", "*"):
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SegmentSelectionError(
                f"--segments {text!r} starts like a JSON list but is not valid JSON ({exc.msg})"
            ) from exc
        if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
            raise SegmentSelectionError(
                f"--segments {text!r}: a JSON value must be a list of segment names"
            )
        chosen = [s.strip() for s in parsed if s.strip()]
    else:
        chosen = [s.strip() for s in stripped.split(",") if s.strip()]
    return tuple(dict.fromkeys(chosen))


def read_history(
    ctx: RunContext,
    segments: tuple[str, ...] | None,
    version: int | None = None,
    covariates: tuple[str, ...] = (),
) -> SegmentHistory:
    """The history of ``segments`` (None: all) from the gold feature table.

    Args:
        ctx: run context.
        segments: segment names, or None for every segment in the table.
        version: Delta version to read (None: the latest, recorded).
        covariates: planned covariates to read besides ``y`` (as doubles).

    Raises:
        FileNotFoundError: the feature table does not exist yet.
        SegmentSelectionError: a requested segment is not in the table.
        KeyError: the table lacks a covariate column.
    """
    table = ctx.table(names.FEATURES)
    if not ctx.tables.exists(table):
        raise FileNotFoundError(
            f"feature table {table} does not exist: run the data tasks first "
            "(ingest -> validate_data -> build_features)"
        )
    pinned = version if version is not None else ctx.tables.version(table)
    assert pinned is not None  # the table exists, so it has a version
    gold = ctx.tables.read(table, version=pinned)
    absent = [c for c in covariates if c not in gold.columns]
    if absent:
        raise KeyError(
            f"feature table {table} (version {pinned}) has no column(s) {absent}, which the "
            "recipe reads as planned covariates: list them under `exogenous` of the dataset "
            "config and rebuild the features, or drop them from `planned`"
        )
    frame = gold.select(
        "segment",
        "series_id",
        "month",
        F.col("y").cast("double").alias("y"),
        *[F.col(c).cast("double").alias(c) for c in covariates],
    )
    available = sorted(r[0] for r in frame.select("segment").distinct().collect())
    if segments is None:
        chosen = tuple(available)
    else:
        unknown = sorted(set(segments) - set(available))
        if unknown:
            raise SegmentSelectionError(
                f"segments {unknown} are not in {table} (version {pinned}); known segments: "
                f"{', '.join(available[:10])}{' ...' if len(available) > 10 else ''}. "
                "Pass --segments all or names from the table's segment column."
            )
        chosen = tuple(sorted(segments))
        frame = frame.where(F.col("segment").isin(list(chosen)))
    return SegmentHistory(table, int(pinned), frame, chosen)


def segment_hashes(frame: DataFrame) -> dict[str, str]:
    """Per segment, SHA-256 of its sorted ``series_id|month|y`` rows (the data hash)."""
    row = F.concat_ws(
        "|",
        "series_id",
        F.date_format("month", "yyyy-MM"),
        F.coalesce(F.col("y").cast("string"), F.lit("null")),
    )
    hashed = frame.groupBy("segment").agg(
        F.sha2(F.concat_ws("\n", F.array_sort(F.collect_list(row))), 256).alias("hash")
    )
    return {r["segment"]: r["hash"] for r in hashed.collect()}


@contextmanager
def grouped_tasks(spark: SparkSession, tasks: int) -> Iterator[None]:
    """Run the block's grouped stages with ``tasks`` shuffle partitions, uncoalesced.

    Adaptive execution would merge the small groups into one or two tasks (the data is
    tiny; the work per group is not), which serialises the model fits. Training asks for one
    task per segment, scoring for one per core. Restored after.
    """
    settings = {
        "spark.sql.shuffle.partitions": str(max(1, tasks)),
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }
    previous: dict[str, str | None] = {}
    for key, setting in settings.items():
        try:
            previous[key] = spark.conf.get(key, None)
            spark.conf.set(key, setting)
        except Exception as exc:  # some runtimes pin these; the stage still runs
            log.warning("could not set %s=%s (%s); segments may share tasks", key, setting, exc)
    try:
        yield
    finally:
        for key, value in previous.items():
            try:
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)
            except Exception as exc:
                log.warning("could not restore %s (%s)", key, exc)


def apply_per_segment(
    frame: DataFrame,
    function: Callable[[pd.DataFrame], pd.DataFrame],
    schema: str,
    segments: int,
) -> pd.DataFrame:
    """Run ``function`` on each segment's rows in parallel on Spark; collect the results."""
    with grouped_tasks(frame.sparkSession, segments):
        return frame.groupBy("segment").applyInPandas(function, schema).toPandas()
