"""Plans: the planned covariates (price lists, promotion calendars) of future months.

Each month the company knows the next months' prices and promotions. A dataset whose config
lists ``planned: [price, promo]`` receives them as plan files beside, never inside, its sales
folder (the sales stream reads its folder recursively, Auto Loader too)::

    <landing volume>/plans/<dataset>/<file_prefix>_plan_<YYYY-MM>[_<suffix>].csv

A plan file is issued in the month of its name (``plan_month``) and has one row per series and
planned month, in the dataset's own column names: the series id and keys, the month and the
planned columns, in ``rename`` order (:func:`plan_landing_columns`).

:func:`load_plans` (run by build_features, once silver is up to date) reads the plan files not
loaded yet, judges every row by :func:`plan_rules`, appends the good rows to ``silver_plans``
and the bad ones, as they landed and with their rules, to ``quarantine_plans``, then records
the file in ``plan_files``. Rows are appended: a plan restated next month is a new row, and a
reader takes per ``(series_id, month)`` the newest ``plan_month``, then the newest
``load_time``. Both data writes insert a file's rows only if that version of the file is not
in the table yet, and ``plan_files`` is written last, so a run that dies half-way is finished
by its rerun and a rerun never duplicates a row. A plan file rewritten after it was loaded is
loaded again: its rows come with a newer ``load_time`` and win.

:func:`read_planned_covariates` is the one reader of the plans (scoring uses it): per
``(series_id, month)`` the row with the newest ``plan_month``, then the newest ``load_time``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.ingest import ends_without_line_break, file_problem
from demand_forecasting.data.plan_layout import (
    FILE_CUT_RULE,
    plan_columns,
    plan_file_month,
    plan_file_name,
    plan_landing_columns,
    plans_folder,
)
from demand_forecasting.data.rules import (
    FAILED_RULES,
    RESCUED,
    Rule,
    clean_text,
    is_number_rule,
    month_offset_column,
    month_rules,
    month_stamp,
    not_null_rule,
    number,
    parsed_number,
    row_parses_rule,
    series_id_column,
    text,
    unique_series_month_rule,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame

log = logging.getLogger(__name__)


def plans_columns(config: DatasetConfig) -> list[str]:
    """The columns of ``silver_plans``, in order."""
    return ["series_id", "month", *config.planned, "plan_month", "source_file", "load_time"]


# ---------------------------------------------------------------------------- plan files


@dataclass(frozen=True)
class PlanFile:
    """A plan file in the plan folder, as listed."""

    path: Path
    plan_month: date
    modified_ms: int


@dataclass(frozen=True)
class PlanFolder:
    """The plan folder as :func:`list_plan_files` found it."""

    #: Plan files whose version (name and modification time) is not in ``plan_files``.
    pending: tuple[PlanFile, ...]
    #: Files of the folder whose name is not a plan file's (not loaded; named in the log).
    misnamed: tuple[Path, ...]
    #: Every plan month with a plan file.
    months: frozenset[date]


def list_plan_files(
    folder: Path, config: DatasetConfig, loaded: Mapping[str, set[int]]
) -> PlanFolder:
    """The plan files of ``folder`` not loaded yet.

    Args:
        loaded: ``{file name: modification times (ms) loaded}`` from ``plan_files``.
    """
    if not folder.is_dir():
        return PlanFolder((), (), frozenset())
    listed = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
    )
    pending, misnamed, months = [], [], set()
    for path in listed:
        month = plan_file_month(config, path.name)
        if month is None:
            misnamed.append(path)
            continue
        months.add(month)
        modified = path.stat().st_mtime_ns // 1_000_000
        if modified not in loaded.get(path.name, set()):
            pending.append(PlanFile(path, month, modified))
    return PlanFolder(tuple(pending), tuple(misnamed), frozenset(months))


def plan_file_problem(plan: PlanFile, config: DatasetConfig) -> str | None:
    """What is wrong with a plan file as a whole (not UTF-8, blank, another header, or a last
    line without a line break, which may be a value cut short), or None."""
    data = plan.path.read_bytes()
    problem = file_problem(plan.path, data, config, plan_landing_columns(config))
    if problem is None and ends_without_line_break(data):
        problem = (
            f"plan file {plan.path} does not end with a line break, so it may have been cut "
            f"short, its last value too (rule: {FILE_CUT_RULE})."
        )
    return problem


def read_plan_files(
    spark: SparkSession, files: Sequence[PlanFile], config: DatasetConfig
) -> DataFrame:
    """The rows of ``files`` as text in canonical names, as ingest reads a landing file (a line
    that does not split into the header's columns is kept whole in ``_rescued_data``), with
    ``source_file``, ``file_modification_time`` and ``plan_month``."""
    landing = plan_landing_columns(config)
    schema = StructType(
        [*(StructField(c, StringType()) for c in landing), StructField(RESCUED, StringType())]
    )
    raw = (
        spark.read.schema(schema)
        .options(header="true", mode="PERMISSIVE", multiLine="false")
        .option("columnNameOfCorruptRecord", RESCUED)
        .csv([str(f.path) for f in files])
    )
    months = {f.path.name: f.plan_month for f in files}
    pairs = [F.lit(v) for name, month in months.items() for v in (name, month)]
    name = F.url_decode(F.regexp_replace(F.regexp_extract("_file_path", "[^/]*$", 0), "[+]", "%2B"))
    renamed = [F.col(f"`{source}`").alias(c) for source, c in config.rename if source in landing]
    return raw.select(
        "*",
        F.col("_metadata.file_path").alias("_file_path"),
        F.col("_metadata.file_modification_time").alias("file_modification_time"),
    ).select(
        *renamed,
        F.col(RESCUED),
        F.col("_file_path").alias("source_file"),
        "file_modification_time",
        F.create_map(*pairs)[name].alias("plan_month"),
    )


#: The modification time of a good row's plan file: silver_plans has no such column, so
#: :func:`insert_new_file_versions` compares it with the rows' ``load_time`` instead.
FILE_VERSION = "_file_modification_time"

# ---------------------------------------------------------------------------------- rules


def plan_rules(config: DatasetConfig, horizon: int) -> list[Rule]:
    """The rules a plan row is judged by, in order (the first failed one is its reason).

    Over the frame of :func:`judge_plans`: ``_text_<column>``, ``_num_<planned>``,
    ``_series_id``, ``_month``, ``_month_offset``, ``_months_ahead`` (months from the plan
    month to the planned month) and ``_series_known``.
    """
    keys = [c for c in plan_columns(config) if c not in config.planned]
    return [
        row_parses_rule(),
        *[not_null_rule(column) for column in [*keys, *config.planned]],
        *[is_number_rule(column) for column in config.planned],
        *month_rules(config),
        *_months_ahead_rules(horizon),
        Rule(
            "known_series",
            "the series has sales in silver (a plan for a series never sold is not used)",
            F.col("_series_known") == F.lit(False),
            "ExpectColumnValuesToBeInSet",
            {"column": "_series_known", "value_set": [True]},
        ),
        unique_series_month_rule("plan file"),
    ]


def _months_ahead_rules(horizon: int) -> list[Rule]:
    ahead = F.col("_months_ahead")
    return [
        Rule(
            "month_after_plan_month",
            "the planned month is after the month the plan file is named for (a plan is of "
            "future months)",
            ahead.isNotNull() & (ahead < 1),
            "ExpectColumnValuesToBeBetween",
            {"column": "_months_ahead", "min_value": 1},
        ),
        Rule(
            "month_within_horizon",
            f"the planned month is at most {horizon} months (the forecast horizon) after the "
            "plan file's month",
            ahead.isNotNull() & (ahead > horizon),
            "ExpectColumnValuesToBeBetween",
            {"column": "_months_ahead", "max_value": horizon},
        ),
    ]


def judge_plans(
    raw: DataFrame, config: DatasetConfig, rules: Sequence[Rule], known: DataFrame
) -> DataFrame:
    """Plan rows (:func:`read_plan_files`) with typed columns and ``_failed_rules`` (pure).

    Args:
        known: ``series_id`` of every series silver holds.
    """
    cleaned = raw.select("*", *[clean_text(c).alias(text(c)) for c in plan_columns(config)])
    stamp = month_stamp(config)
    month = F.to_date(stamp)
    typed = cleaned.select(
        "*",
        *[parsed_number(text(c)).alias(number(c)) for c in config.planned],
        series_id_column(config).alias("_series_id"),
        month.alias("_month"),
        month_offset_column(stamp).alias("_month_offset"),
        (
            (F.year(month) - F.year("plan_month")) * 12 + F.month(month) - F.month("plan_month")
        ).alias("_months_ahead"),
    )
    flagged = known.select(F.col("series_id").alias("_series_id"), F.lit(True).alias("_known"))
    joined = typed.join(F.broadcast(flagged.distinct()), "_series_id", "left").select(
        "*",
        F.when(F.col("_series_id").isNotNull(), F.coalesce("_known", F.lit(False))).alias(
            "_series_known"
        ),
    )
    flags = F.array(*[F.when(F.coalesce(r.failed, F.lit(False)), F.lit(r.name)) for r in rules])
    return joined.drop("_known").withColumn(
        FAILED_RULES, F.filter(flags, lambda name: name.isNotNull())
    )


def accepted_plans(judged: DataFrame, config: DatasetConfig, load_time: Column) -> DataFrame:
    """Good plan rows in the shape of ``silver_plans`` (pure), plus :data:`FILE_VERSION` for
    :func:`insert_new_file_versions`."""
    return judged.where(F.size(FAILED_RULES) == 0).select(
        F.col("_series_id").alias("series_id"),
        F.col("_month").alias("month"),
        *[F.col(number(c)).alias(c) for c in config.planned],
        "plan_month",
        "source_file",
        load_time.alias("load_time"),
        F.col("file_modification_time").alias(FILE_VERSION),
    )


def quarantined_plans(
    judged: DataFrame, config: DatasetConfig, load_time: Column, validated_at: Column
) -> DataFrame:
    """Bad plan rows as they landed (text, canonical names) with their lineage, the first failed
    rule, all of them and when (pure)."""
    return judged.where(F.size(FAILED_RULES) > 0).select(
        *plan_columns(config),
        RESCUED,
        "plan_month",
        "source_file",
        "file_modification_time",
        load_time.alias("load_time"),
        F.col(FAILED_RULES)[0].alias("failed_rule"),
        F.col(FAILED_RULES).alias("failed_rules"),
        validated_at.alias("validated_at"),
    )


# ---------------------------------------------------------------------------------- task


@dataclass(frozen=True)
class PlanLoad:
    """What one :func:`load_plans` did."""

    files: int = 0
    accepted: int = 0
    quarantined: int = 0
    #: Files not loaded because they break a file rule (named in the log and in plan_files).
    refused: int = 0


PLAN_FILES_SCHEMA = StructType(
    [
        StructField("file_name", StringType()),
        StructField("modified_ms", LongType()),
        StructField("plan_month", DateType()),
        StructField("rows", LongType()),
        StructField("accepted", LongType()),
        StructField("quarantined", LongType()),
        StructField("problem", StringType()),
        StructField("loaded_at", TimestampType()),
    ]
)


def load_plans(ctx: RunContext, config: DatasetConfig, horizon: int) -> PlanLoad:
    """Load the plan files not loaded yet into ``silver_plans`` and ``quarantine_plans``.

    Does nothing for a dataset without ``planned`` columns, or before silver exists (the rule
    ``known_series`` needs it: the files wait for the next run).
    """
    if not config.planned:
        return PlanLoad()
    folder = plans_folder(Path(ctx.volume_path(names.LANDING_VOLUME, config.name)))
    silver = ctx.table(names.SILVER)
    if not ctx.tables.exists(silver):
        log.info("plans: %s does not exist yet; plan files in %s wait for it", silver, folder)
        return PlanLoad()
    found = list_plan_files(folder, config, _loaded_versions(ctx))
    _log_folder(ctx, config, folder, found, silver)
    if not found.pending:
        return PlanLoad()
    problems = {p.path.name: plan_file_problem(p, config) for p in found.pending}
    for problem in problems.values():
        if problem:
            log.error(
                "plans: %s Not loaded; land a corrected plan under a new name (e.g. with a "
                "suffix: <file_prefix>_plan_<YYYY-MM>_correction.csv) or rewrite it",
                problem,
            )
    good = [p for p in found.pending if not problems[p.path.name]]
    counts: dict[str, tuple[int, int]] = {}
    if good:
        counts = _judge_and_write(ctx, config, horizon, good)
    _record_files(ctx, found.pending, counts, problems)
    done = PlanLoad(
        len(good),
        sum(a for a, _ in counts.values()),
        sum(q for _, q in counts.values()),
        len(found.pending) - len(good),
    )
    log.info(
        "plans: %d plan file(s) loaded: %d row(s) into %s, %d quarantined in %s; %d file(s) "
        "refused",
        done.files,
        done.accepted,
        ctx.table(names.PLANS),
        done.quarantined,
        ctx.table(names.PLANS_QUARANTINE),
        done.refused,
    )
    return done


def _loaded_versions(ctx: RunContext) -> dict[str, set[int]]:
    table = ctx.table(names.PLAN_FILES)
    if not ctx.tables.exists(table):
        return {}
    loaded: dict[str, set[int]] = {}
    for row in ctx.tables.read(table).select("file_name", "modified_ms").distinct().collect():
        loaded.setdefault(row["file_name"], set()).add(int(row["modified_ms"]))
    return loaded


def _log_folder(
    ctx: RunContext, config: DatasetConfig, folder: Path, found: PlanFolder, silver: str
) -> None:
    for path in found.misnamed:
        log.warning(
            "plans: %s is not named as a plan file (%s_plan_<YYYY-MM>[_<suffix>].csv) and is "
            "not loaded; rename it",
            path,
            config.file_prefix,
        )
    newest = ctx.tables.read(silver).agg(F.max("month")).first()
    month = newest[0] if newest else None
    if month is not None and month not in found.months:
        log.info(
            "plans: no plan file of %s (%s) in %s: the model uses its stand-in for months "
            "without a plan",
            f"{month:%Y-%m}",
            plan_file_name(config, month),
            folder,
        )


def _judge_and_write(
    ctx: RunContext, config: DatasetConfig, horizon: int, files: Sequence[PlanFile]
) -> dict[str, tuple[int, int]]:
    """Judge the rows of ``files`` and write them; return ``{file name: (accepted,
    quarantined)}``."""
    rules = plan_rules(config, horizon)
    known = ctx.tables.read(ctx.table(names.SILVER)).select("series_id").distinct()
    raw = read_plan_files(ctx.spark, files, config)
    judged = judge_plans(raw, config, rules, known).localCheckpoint(eager=True)
    counts, broken = _count(judged, rules)
    # The wall clock, as ingest's: a load must be later than the file it loaded (a rerun skips
    # a file version whose rows have a load_time after its modification time).
    load_time = F.current_timestamp()
    # A literal bound on the target's plan_month lets Delta skip the files of other months
    # (source_file's statistics are truncated to a prefix that every plan file shares).
    months = ", ".join(sorted({f"DATE'{f.plan_month}'" for f in files}))
    same_file = f"t.plan_month IN ({months}) AND t.source_file = s.source_file"
    if any(quarantined for _, quarantined in counts.values()):
        insert_new_file_versions(
            ctx,
            quarantined_plans(judged, config, load_time, F.lit(ctx.clock()).cast("timestamp")),
            ctx.table(names.PLANS_QUARANTINE),
            f"{same_file} AND t.file_modification_time = s.file_modification_time",
        )
    if any(accepted for accepted, _ in counts.values()):
        insert_new_file_versions(
            ctx,
            accepted_plans(judged, config, load_time),
            ctx.table(names.PLANS),
            f"{same_file} AND t.load_time >= s.{FILE_VERSION}",
        )
    if broken:
        log.warning(
            "plans: rows broke plan rules (%s); they are in %s with the rule, as they landed. "
            "Land corrected plans in a new plan file (a later plan month, or the same month's "
            "plan with a suffix: its rows load later and win)",
            ", ".join(f"{rule} {n}" for rule, n in broken.items()),
            ctx.table(names.PLANS_QUARANTINE),
        )
    return counts


def _count(
    judged: DataFrame, rules: Sequence[Rule]
) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """``({file name: (accepted, quarantined)}, {rule: rows that broke it})`` in one job."""
    per_rule = [F.count_if(F.array_contains(FAILED_RULES, r.name)).alias(r.name) for r in rules]
    rows = (
        judged.groupBy(F.regexp_extract("source_file", "[^/]*$", 0).alias("_file"))
        .agg(
            F.count_if(F.size(FAILED_RULES) == 0).alias("_accepted"),
            F.count_if(F.size(FAILED_RULES) > 0).alias("_quarantined"),
            *per_rule,
        )
        .collect()
    )
    # Spark gives the path URL-encoded (a space as %20).
    counts = {unquote(r["_file"]): (int(r["_accepted"]), int(r["_quarantined"])) for r in rows}
    broken = {r.name: sum(int(row[r.name]) for row in rows) for r in rules}
    return counts, {rule: n for rule, n in broken.items() if n}


def insert_new_file_versions(ctx: RunContext, rows: DataFrame, name: str, loaded: str) -> None:
    """Append ``rows`` to table ``name``, except those of a file version already in it
    (``loaded``: the MERGE condition between a table row ``t`` and a new row ``s`` saying so).

    The column :data:`FILE_VERSION` of ``rows``, if any, serves the condition and is not
    written.
    """
    columns = [c for c in rows.columns if c != FILE_VERSION]
    if not ctx.tables.exists(name):
        if not rows.isEmpty():
            ctx.tables.write(rows.select(*columns), name, mode="append")
        return
    (
        ctx.tables.delta_table(name)
        .alias("t")
        .merge(rows.alias("s"), loaded)
        .whenNotMatchedInsert(values={c: f"s.`{c}`" for c in columns})
        .execute()
    )


def _record_files(
    ctx: RunContext,
    files: Sequence[PlanFile],
    counts: Mapping[str, tuple[int, int]],
    problems: Mapping[str, str | None],
) -> None:
    """Append one ``plan_files`` row per file version judged or refused: written last, it
    marks the files done."""
    now = ctx.clock()
    rows = []
    for plan in files:
        accepted, quarantined = counts.get(plan.path.name, (0, 0))
        rows.append(
            (
                plan.path.name,
                plan.modified_ms,
                plan.plan_month,
                accepted + quarantined,
                accepted,
                quarantined,
                problems.get(plan.path.name),
                now,
            )
        )
    # From Arrow: no Python worker to start (createDataFrame on tuples took 12 s of a 29 s load).
    frame = rows_frame(ctx.spark, rows, PLAN_FILES_SCHEMA)
    ctx.tables.write(frame, ctx.table(names.PLAN_FILES), mode="append")


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
