"""Task ``build_features``: validated rows -> silver -> the gold feature table, incrementally.

A stream over the validated table (with its own checkpoint) hands over the rows validated since
the last run. For each series they touch, a table is rewritten from the first month that can
have changed (``_since``: the series' first new month, or the month after the table's latest
one if earlier): silver from the validated rows of those months
(:func:`~demand_forecasting.data.silver.build_silver`), gold from silver with twelve months of
look-back (:func:`~demand_forecasting.data.features.add_features`). Only rows that differ from
what the table holds are written: appended when their keys are new (a normal month), MERGEd on
(series_id, month) when a key is corrected. A rerun, or a retry of a batch after a crash,
finds no difference and commits nothing; a month of new data adds that month's rows (and any
gap rows before it), so a monthly run costs that month plus a year of look-back, not the
whole history.

When :mod:`demand_forecasting.data.features` builds a column the table does not have yet (a
new feature), the column is added to the table and every series is rewritten from its first
month, so that the whole history gets it; a column the code no longer builds stays in the
table and is written null from then on. Adding the column and rewriting the history are two
commits: the table property :data:`BACKFILL_PROPERTY` names the columns from before the first
until after the second, so that a run killed (or failing) in between has its rerun rewrite the
history again, where it would find the column present and fill only the new months. Older
table versions (time travel, the champions' drift references) keep the columns they had.

On Unity Catalog the feature table gets a primary key on (series_id, month), which registers
it as a feature table (:meth:`~demand_forecasting.platform.tables.TableStore.declare_primary_key`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig, add_month, load_dataset_config
from demand_forecasting.data.features import LAGS, WINDOWS, add_features
from demand_forecasting.data.plans import PlanLoad, load_plans
from demand_forecasting.data.silver import build_silver
from demand_forecasting.data.streams import delta_source_caught_up, run_available_now
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import generated_code
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)

#: The key of silver and gold.
KEY = ("series_id", "month")
#: Months of history the features of a month look back on (lag_12, roll_*_12).
LOOK_BACK = max(LAGS + WINDOWS)
#: Above this size of the local gold table's files, a monthly increment runs with Spark's
#: generated code (the local session runs without it, faster for small tables). The increment
#: reads silver and gold across their history files, so its cost grows with them: with
#: generated code it took 18.3-18.6 s vs 14.8-15.4 s interpreted on the bundled data (gold
#: 3.3 MB), and 16.0 s vs 23.3 s on 10x synthetic data (benchmarks/README.md, Session 8).
#: The crossover, by interpolation, is near 2x the bundled data.
GENERATED_CODE_MIN_GOLD_BYTES = 8 * 1024 * 1024
#: Table property of gold naming the feature columns added whose history is not written yet.
BACKFILL_PROPERTY = "demand_forecasting.features_backfill_pending"
#: Days of gold's history kept readable by time travel. check_drift reads each champion's
#: training data as of the gold version it was trained on, which is months old; on Unity
#: Catalog, predictive optimization vacuums a managed table's unreferenced files after 7
#: days and the log keeps 30, after which every champion's reference would be unreadable
#: and its segment retrained each month. A champion older than this still loses its
#: reference (check_drift retrains it, RETRAIN_NO_REFERENCE).
FEATURE_HISTORY_DAYS = 730


@dataclass(frozen=True)
class FeaturesConfig:
    """Parameters of the build_features task."""

    dataset: DatasetConfig
    #: Months ahead a plan may plan (bundle variable ``horizon``): later rows are quarantined.
    horizon: int = 12

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"--horizon {self.horizon} is not a number of months (1 or more)")


@dataclass
class FeatureRun:
    """Rows each table received (inserted or updated) in one run."""

    silver_rows: int = 0
    gold_rows: int = 0
    #: Validated rows the run consumed (task telemetry's ``rows_in``).
    rows_in: int = 0
    #: Plan rows loaded into silver_plans and quarantined (datasets with ``planned`` columns).
    plans: PlanLoad = field(default_factory=PlanLoad)

    @property
    def rows_out(self) -> int:
        """Gold rows written (task telemetry's ``rows_out``)."""
        return self.gold_rows


def since_months(first_new: DataFrame, current: DataFrame | None) -> DataFrame:
    """Per touched series, the first month a table must (re)write: ``series_id, _since, _latest``.

    ``_since`` is the earlier of the series' first new month (``first_new``: ``series_id,
    _first_new``) and the month after the table's latest month for it (gap rows go there,
    and a batch retried after a crash finds its months again); ``_latest`` is that latest
    month (null for a series the table does not hold yet).
    """
    if current is None:
        return first_new.select(
            "series_id",
            F.col("_first_new").alias("_since"),
            F.lit(None).cast("date").alias("_latest"),
        )
    latest = current.groupBy("series_id").agg(F.max("month").alias("_latest"))
    return first_new.join(latest, "series_id", "left").select(
        "series_id", F.least("_first_new", F.add_months("_latest", 1)).alias("_since"), "_latest"
    )


@dataclass(frozen=True)
class Since:
    """Per touched series the first month to rewrite, materialised, and the earliest of them."""

    frame: DataFrame
    #: The earliest ``_since``: a literal lower bound on ``month`` lets Delta skip old files.
    earliest: date


def materialise_since(first_new: DataFrame, current: DataFrame | None) -> Since:
    """:func:`since_months`, computed once (two small jobs) for the reads that follow."""
    frame = since_months(first_new, current).localCheckpoint(eager=True)
    earliest = frame.agg(F.min("_since")).first()
    return Since(frame, earliest[0] if earliest and earliest[0] else date.max)


def rows_since(rows: DataFrame, since: Since, look_back: int = 0) -> DataFrame:
    """Rows of touched series from their ``_since`` month on (``look_back`` months earlier)."""
    bound = since.earliest if since.earliest == date.max else add_month(since.earliest, -look_back)
    starts = F.broadcast(since.frame.select("series_id", "_since"))
    return (
        rows.where(F.col("month") >= F.lit(bound))
        .join(starts, "series_id")
        .where(F.col("month") >= F.add_months("_since", -look_back))
        .drop("_since")
    )


def silver_spans(validated_since: DataFrame, since: DataFrame) -> DataFrame:
    """Months silver rewrites per series: from ``_since`` to its latest old or new month."""
    newest = validated_since.groupBy("series_id").agg(F.max("month").alias("_newest"))
    return newest.join(since, "series_id").select(
        "series_id",
        F.col("_since").alias("_first"),
        F.greatest("_newest", "_latest").alias("_last"),
    )


def changed_rows(candidate: DataFrame, current: DataFrame | None, since: Since) -> DataFrame:
    """Rows of ``candidate`` the table ``current`` does not hold exactly, flagged ``_is_update``.

    ``candidate`` holds a table's rows from each series' ``_since`` on; ``_is_update`` is
    true when the table already has a row with that key (a MERGE is needed) and false for new
    keys (an append will do). One join on the key; values compare null-safe.
    """
    if current is None:
        return candidate.withColumn("_is_update", F.lit(False))
    values = [c for c in candidate.columns if c not in KEY]
    held = rows_since(current, since).select(
        *KEY, *[F.col(c).alias(f"_held_{c}") for c in values], F.lit(True).alias("_is_update")
    )
    same = reduce(lambda a, b: a & b, [F.col(c).eqNullSafe(F.col(f"_held_{c}")) for c in values])
    joined = candidate.join(held, list(KEY), "left")
    return joined.where(F.col("_is_update").isNull() | ~same).select(
        *candidate.columns, F.coalesce("_is_update", F.lit(False)).alias("_is_update")
    )


def write_changes(ctx: RunContext, changes: DataFrame, name: str) -> int:
    """Append new keys, or MERGE on (series_id, month) when a key is updated; return the rows.

    Creates the table on first use; commits nothing when there are no changes.
    """
    # Materialise the changes first: they are computed from the table itself, and a
    # recomputation during the write would see the new state and find nothing to change.
    changes = changes.localCheckpoint(eager=True)
    counts = changes.agg(
        F.count(F.lit(1)).alias("rows"), F.count_if("_is_update").alias("updates")
    ).first()
    total, updates = (int(counts["rows"]), int(counts["updates"])) if counts else (0, 0)
    rows = changes.drop("_is_update")
    if total == 0:
        return 0
    if updates == 0 or not ctx.tables.exists(name):
        ctx.tables.write(rows, name, mode="append")
    else:
        condition = " AND ".join(f"t.{k} = s.{k}" for k in KEY)
        (
            ctx.tables.delta_table(name)
            .alias("t")
            .merge(rows.alias("s"), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
    return total


def update_silver(ctx: RunContext, config: DatasetConfig, first_new: DataFrame) -> int:
    """Rewrite silver from the first month each touched series can have changed."""
    silver = ctx.table(names.SILVER)
    current = _current(ctx, silver)
    since = materialise_since(first_new, current)
    validated = rows_since(ctx.tables.read(ctx.table(names.VALIDATED)), since)
    rows = build_silver(validated, config, silver_spans(validated, since.frame))
    return write_changes(ctx, changed_rows(rows, current, since), silver)


def add_new_feature_columns(
    ctx: RunContext, name: str, current: DataFrame, built: DataFrame
) -> list[str]:
    """Add to the table ``name`` the columns of ``built`` it lacks (new features); return the
    columns whose history is to be written: those added now, and those an earlier run added
    without finishing the rewrite (:data:`BACKFILL_PROPERTY`, set before the columns are added
    and removed by :func:`backfill_done`)."""
    ref = ctx.tables.sql_ref(name)
    properties = ctx.tables.delta_table(name).detail().first()
    held = (properties["properties"] or {}).get(BACKFILL_PROPERTY, "") if properties else ""
    pending = [c for c in held.split(",") if c]
    added = [f for f in built.schema.fields if f.name not in current.columns]
    if added:
        pending = sorted({*pending, *(f.name for f in added)})
        ctx.spark.sql(
            f"ALTER TABLE {ref} SET TBLPROPERTIES ('{BACKFILL_PROPERTY}' = '{','.join(pending)}')"
        )
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in added)
        ctx.spark.sql(f"ALTER TABLE {ref} ADD COLUMNS ({columns})")
    return pending


def backfill_done(ctx: RunContext, name: str) -> None:
    """Clear :data:`BACKFILL_PROPERTY` once the history has the new columns."""
    ctx.spark.sql(
        f"ALTER TABLE {ctx.tables.sql_ref(name)} UNSET TBLPROPERTIES IF EXISTS "
        f"('{BACKFILL_PROPERTY}')"
    )


def with_table_columns(rows: DataFrame, current: DataFrame) -> DataFrame:
    """``rows`` plus a null for each column of the table the code no longer builds."""
    retired = [f for f in current.schema.fields if f.name not in rows.columns]
    return rows.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in retired])


def update_gold(ctx: RunContext, first_new: DataFrame) -> int:
    """Recompute gold features from the month each touched series can have changed."""
    gold = ctx.table(names.FEATURES)
    current = _current(ctx, gold)
    silver = ctx.tables.read(ctx.table(names.SILVER))
    added: list[str] = []
    if current is not None:
        added = add_new_feature_columns(ctx, gold, current, add_features(silver))
        if added:
            log.warning(
                "build_features: %s gains the feature column(s) %s; every series is rewritten "
                "from its first month so that its whole history has them",
                gold,
                ", ".join(added),
            )
            first_new = silver.groupBy("series_id").agg(F.min("month").alias("_first_new"))
            current = _current(ctx, gold)
    since = materialise_since(first_new, current)
    # LOOK_BACK months before _since are the longest look-back (lag_12, roll_*_12).
    context = rows_since(silver, since, LOOK_BACK)
    rows = rows_since(add_features(context), since)
    if current is not None:
        rows = with_table_columns(rows, current)
    written = write_changes(ctx, changed_rows(rows, current, since), gold)
    if added:
        backfill_done(ctx, gold)
    if current is None and written:
        ctx.tables.declare_primary_key(gold, KEY)
    if ctx.tables.exists(gold):
        # Every run, not only at creation: a gold table created by an older release (or
        # with another FEATURE_HISTORY_DAYS) converges; when it matches, nothing is written.
        ctx.tables.retain_history(gold, FEATURE_HISTORY_DAYS)
    return written


def update_tables(ctx: RunContext, config: DatasetConfig, batch: DataFrame) -> FeatureRun:
    """Bring silver, then gold, up to date with one batch of newly validated rows."""
    # Materialised once: the batch is read once (and counted once in the stream's progress).
    first_new = batch.groupBy("series_id").agg(F.min("month").alias("_first_new"))
    first_new = first_new.localCheckpoint(eager=True)
    use_generated_code = ctx.first_local_load(names.FEATURES) or ctx.large_local_table(
        names.FEATURES, GENERATED_CODE_MIN_GOLD_BYTES
    )
    if not use_generated_code:
        return FeatureRun(update_silver(ctx, config, first_new), update_gold(ctx, first_new))
    with generated_code(ctx.spark):
        return FeatureRun(update_silver(ctx, config, first_new), update_gold(ctx, first_new))


def _current(ctx: RunContext, name: str) -> DataFrame | None:
    return ctx.tables.read(name) if ctx.tables.exists(name) else None


def run(ctx: RunContext, cfg: FeaturesConfig) -> FeatureRun:
    """Update silver and gold with every newly validated row, then load new plan files (a
    dataset with ``planned`` columns; their rule ``known_series`` reads the new silver);
    return the rows written."""
    total = update_sales_tables(ctx, cfg)
    total.plans = load_plans(ctx, cfg.dataset, cfg.horizon)
    return total


def update_sales_tables(ctx: RunContext, cfg: FeaturesConfig) -> FeatureRun:
    """Update silver and gold with every newly validated row; return the rows written."""
    validated = ctx.table(names.VALIDATED)
    total = FeatureRun()
    if not ctx.tables.exists(validated):
        log.info(
            "build_features: %s does not exist yet (nothing validated); nothing to do", validated
        )
        return total
    checkpoint = ctx.volume_path(names.CHECKPOINT_VOLUME, names.SILVER)
    folder = ctx.tables.local_folder(validated)
    if folder is not None and delta_source_caught_up(checkpoint, folder):
        log.info("build_features: the checkpoint has every validated version; no query started")
        ctx.task_values.set("silver_rows_written", 0)
        ctx.task_values.set("gold_rows_written", 0)
        return total

    def update(batch: DataFrame, batch_id: int) -> None:
        done = update_tables(ctx, cfg.dataset, batch)
        total.silver_rows += done.silver_rows
        total.gold_rows += done.gold_rows
        log.info(
            "build_features: batch %d: %d silver row(s) and %d gold row(s) inserted or updated",
            batch_id,
            done.silver_rows,
            done.gold_rows,
        )

    stream = run_available_now(
        ctx.tables.read_stream(validated), update, checkpoint, f"features_{cfg.dataset.name}"
    )
    total.rows_in = stream.input_rows
    if not stream.batches:
        log.info("build_features: no newly validated rows; silver and gold unchanged")
    ctx.task_values.set("silver_rows_written", total.silver_rows)
    ctx.task_values.set("gold_rows_written", total.gold_rows)
    return total


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The build_features task's own options."""
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (bundle variable `dataset`)",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=12,
        help="plan rows more months ahead of their plan file are quarantined "
        "(bundle variable `horizon`)",
    )


def make_config(args: argparse.Namespace) -> FeaturesConfig:
    """Typed config from the parsed options."""
    return FeaturesConfig(load_dataset_config(args.dataset), args.horizon)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-build-features``."""
    run_task(
        "build_features",
        "Update silver and the gold feature table from validated rows.",
        add_arguments,
        make_config,
        run,
        argv,
    )
