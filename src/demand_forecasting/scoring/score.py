"""Task ``score``: every segment's champion forecasts its series into the gold forecast table.

On Spark, one group per segment (``groupBy("segment").applyInPandas``): the worker loads the
segment's champion pyfunc (the exact version resolved on the driver) and calls its
``predict`` on the segment's whole history up to the run month: the same forecaster and
feature code as training and the backtests (:mod:`demand_forecasting.models.pyfunc`). On a
local session a Python worker imports the scoring modules while the driver prepares the job
(:mod:`demand_forecasting.scoring.worker_warmup`), and the grouped apply reuses it.

The run month is the feature table's newest month; its forecasts replace that month's
partition of the forecast table (``replaceWhere``), so a rerun writes the same rows and the
table's Delta history keeps every earlier run. A segment without a champion is named in the
log and handed over to monitor (``segments_without_champion``, with
``segments_on_fallback``: lists that grow with the estate, in the job run's hand-over table)
and skipped. Every forecast starts at
the run month: a series without a value in it (it stopped, or this month's row was
quarantined) gets no forecast from the model, nor does a segment with no row in it at all
(named in the log); those series with a value in the year before are named in the log and
counted in the task value ``series_not_forecast`` (a series that stopped longer ago is not
news every month).

A dataset with planned covariates (``planned`` in its config: price, promotion) gives each
series a row per month of the next :data:`~demand_forecasting.models.recipe.MAX_HORIZON`
months with the newest plan from :data:`~demand_forecasting.names.PLANS`
(:func:`demand_forecasting.data.plans.read_planned_covariates`), NaN where none was landed; a
champion trained with covariates forecasts from them, standing in a missing plan (the series'
median of the last 12 months) and marking those rows ``plan_missing`` (one log line counts
them); a champion without covariates never sees these rows.

No forecast is written by a champion the audit trail does not account for: with the champions
it loads, score reconciles the trail first (:func:`demand_forecasting.models.audit.reconcile`:
one read of the audit table; a ``reconciled`` row for a champion whose row a killed deploy,
approve or rollback never wrote).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import (
    DatasetConfig,
    add_month,
    load_dataset_config,
    parse_month,
)
from demand_forecasting.data.plans import read_planned_covariates
from demand_forecasting.data.silver import series_attributes
from demand_forecasting.models.audit import reconcile
from demand_forecasting.models.panel import HISTORY_COLUMNS, PLAN_FLAG
from demand_forecasting.models.recipe import MAX_HORIZON
from demand_forecasting.models.registry import CHAMPION, SegmentRegistry, add_model_prefix_option
from demand_forecasting.models.segment_data import grouped_tasks
from demand_forecasting.monitoring.telemetry import record_segment_seconds
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import default_parallelism
from demand_forecasting.scoring.champion_models import ChampionModel, champions
from demand_forecasting.scoring.worker_warmup import WorkerWarmUp
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)

TASK_KEY = "score"
#: Hand-over keys (JSON lists of segments) monitor reads.
WITHOUT_CHAMPION_KEY = "segments_without_champion"
#: The month score forecast from (``YYYY-MM``): monitor reports that month.
RUN_MONTH_KEY = "run_month"
ON_FALLBACK_KEY = "segments_on_fallback"

#: What the group function returns (the model's own columns plus the segment).
MODEL_OUTPUT_SCHEMA = (
    "segment string, series_id string, origin date, horizon int, month date, "
    "forecast double, forecast_lower double, forecast_upper double, forecast_xgb double, "
    "forecast_holt_winters double, plan_missing boolean, "
    "model_name string, model_version string, score_seconds double"
)
#: Not written to the forecast table: each segment's own seconds go to the run telemetry.
SECONDS_COLUMN = "score_seconds"


class SegmentScoringError(RuntimeError):
    """A segment's champion could not be loaded or could not forecast (names the segment)."""


@dataclass(frozen=True)
class ScoreConfig:
    """Parameters of ``score``."""

    model_prefix: str = "demand"
    series_attributes: tuple[str, ...] = ("segment",)
    run_month: date | None = None
    job_run_id: str | None = None
    #: The dataset config, when it has planned covariates (None: no plans to read).
    planned_dataset: DatasetConfig | None = None


@dataclass
class ScoreSummary:
    """What ``score`` wrote (``rows_in``/``rows_out`` feed the telemetry)."""

    run_month: date
    series_forecast: int = 0
    segments_scored: list[str] = field(default_factory=list)
    segments_without_champion: list[str] = field(default_factory=list)
    #: Scored by the seasonal-naive fallback champion.
    segments_on_fallback: list[str] = field(default_factory=list)
    #: Series of the champions' segments without a value in the run month (stopped,
    #: or this month's row quarantined): the model forecasts only observed series.
    series_not_forecast: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0


def model_input(group: pd.DataFrame, covariates: Sequence[str] = ()) -> pd.DataFrame:
    """A segment's rows as the pyfunc takes them: ``series_id, month, y``, and for a model
    with planned ``covariates`` those columns and the plan rows (:data:`PLAN_FLAG`); a
    model without covariates gets the history rows only."""
    is_plan = (
        group[PLAN_FLAG].fillna(False).astype(bool)
        if PLAN_FLAG in group.columns
        else pd.Series(False, index=group.index)
    )
    rows = group if covariates else group[~is_plan]
    frame = pd.DataFrame(
        {
            "series_id": rows["series_id"].astype(str),
            "month": pd.to_datetime(rows["month"]),
            "y": pd.to_numeric(rows["y"], errors="coerce").astype(float),
            **{c: pd.to_numeric(rows[c], errors="coerce").astype(float) for c in covariates},
        }
    )
    if covariates:
        frame[PLAN_FLAG] = is_plan.to_numpy()
    return frame.sort_values(["series_id", "month"], ignore_index=True)


def input_covariates(pyfunc: object) -> tuple[str, ...]:
    """The planned covariates a loaded pyfunc's signature takes (none for a model without
    them, and for every model saved before them)."""
    schema = pyfunc.metadata.get_input_schema()  # type: ignore[attr-defined]
    names_ = schema.input_names() if schema is not None else []
    if PLAN_FLAG not in names_:
        return ()
    return tuple(n for n in names_ if n not in (*HISTORY_COLUMNS, PLAN_FLAG))


def forecast_rows(
    prediction: pd.DataFrame, model: ChampionModel, seconds: float = 0.0
) -> pd.DataFrame:
    """The pyfunc's output as rows of :data:`MODEL_OUTPUT_SCHEMA` (pure); ``seconds``: what
    loading the model and forecasting took."""
    columns = [c.split()[0] for c in MODEL_OUTPUT_SCHEMA.split(", ")]
    if prediction.empty:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(
        {
            "segment": model.segment,
            "series_id": prediction["series_id"].astype(str),
            "origin": pd.to_datetime(prediction["origin"]).dt.date,
            "horizon": prediction["horizon"].astype("int32"),
            "month": pd.to_datetime(prediction["month"]).dt.date,
            "forecast": prediction["forecast"].astype(float),
            # NaN from a model without an interval (saved before intervals existed).
            "forecast_lower": prediction.get("forecast_lower", np.nan),
            "forecast_upper": prediction.get("forecast_upper", np.nan),
            "forecast_xgb": prediction["forecast_xgb"].astype(float),
            "forecast_holt_winters": prediction["forecast_holt_winters"].astype(float),
            # False from a model without planned covariates (or saved before them).
            "plan_missing": prediction.get("plan_missing", False),
            "model_name": model.model_name,
            "model_version": model.version,
            SECONDS_COLUMN: float(seconds),
        }
    )
    out["plan_missing"] = out["plan_missing"].fillna(False).astype(bool)
    return out[columns]


def score_group(models: dict[str, ChampionModel]):  # type: ignore[no-untyped-def]
    """The group function: load the segment's champion on the worker and forecast."""

    def score(group: pd.DataFrame) -> pd.DataFrame:
        import mlflow.pyfunc

        started = time.perf_counter()
        model = models[str(group["segment"].iloc[0])]
        try:
            # The driver checked the champions' environments (champion_models.champions).
            pyfunc = mlflow.pyfunc.load_model(model.folder, suppress_warnings=True)
            prediction = pyfunc.predict(model_input(group, input_covariates(pyfunc)))
        except Exception as exc:  # the worker's traceback names no segment: say which
            raise SegmentScoringError(
                f"score: segment {model.segment}: champion {model.model_id} could not "
                f"forecast: {type(exc).__name__}: {exc}"
            ) from exc
        return forecast_rows(prediction, model, time.perf_counter() - started)

    return score


def forecasts(
    history: DataFrame, models: dict[str, ChampionModel], attributes: DataFrame, run_month: date
) -> DataFrame:
    """Forecast rows of every segment in ``models``, with series attributes and run month."""
    scored = history.groupBy("segment").applyInPandas(
        score_group(models), schema=MODEL_OUTPUT_SCHEMA
    )
    return (
        scored.join(attributes, ["series_id", "segment"], "left")
        .withColumn("run_month", F.lit(run_month))
        .withColumn("run_timestamp", F.lit(run_month).cast("timestamp"))
        .withColumn("model_id", F.concat_ws("/", "model_name", "model_version"))
    )


def with_plan_rows(
    ctx: RunContext,
    config: DatasetConfig,
    history: DataFrame,
    scored: dict[str, ChampionModel],
    run_month: date,
) -> DataFrame:
    """The scored segments' history with their planned covariates, plus one plan row
    (:data:`PLAN_FLAG`) per series and month of the next :data:`MAX_HORIZON` months: the
    newest plan, NaN where none was landed (the model stands it in and marks the row)."""
    planned = list(config.planned)
    months = [add_month(run_month, k) for k in range(1, MAX_HORIZON + 1)]
    table = ctx.table(names.PLANS)
    if ctx.tables.exists(table):
        plans = read_planned_covariates(ctx, config, months)
    else:
        log.warning(
            "score: dataset %s plans %s but %s does not exist (no plan file landed): every "
            "plan is stood in by the series' median of the last 12 months (plan_missing)",
            config.name,
            ", ".join(planned),
            table,
        )
        plans = pd.DataFrame(columns=["series_id", "month", *planned])
    plan_schema = ", ".join(["series_id string", "month date", *[f"{c} double" for c in planned]])
    plan_frame = ctx.spark.createDataFrame(
        plans.assign(month=pd.to_datetime(plans["month"]).dt.date)[
            ["series_id", "month", *planned]
        ],
        plan_schema,
    )
    in_scope = history.where(F.col("segment").isin(list(scored)))
    grid = (
        in_scope.select("segment", "series_id")
        .distinct()
        .crossJoin(ctx.spark.createDataFrame([(m,) for m in months], "month date"))
    )
    plan_rows = (
        grid.join(plan_frame, ["series_id", "month"], "left")
        .withColumn("y", F.lit(None).cast("double"))
        .withColumn(PLAN_FLAG, F.lit(True))
    )
    columns = ["segment", "series_id", "month", "y", *planned, PLAN_FLAG]
    history_rows = in_scope.select(
        "segment",
        "series_id",
        "month",
        F.col("y").cast("double").alias("y"),
        *[F.col(c).cast("double").alias(c) for c in planned],
        F.lit(False).alias(PLAN_FLAG),
    )
    return history_rows.unionByName(plan_rows.select(*columns))


def log_missing_plans(counts: list[Any], config: DatasetConfig | None) -> None:
    """One line: how many forecast rows (of how many series) stood in a missing plan."""
    if config is None:
        return
    missing = [r for r in counts if (r["plan_missing"] or 0) > 0]
    rows = sum(int(r["plan_missing"]) for r in missing)
    series = sum(int(r["plan_missing_series"]) for r in missing)
    if not rows:
        log.info("score: every forecast month had a plan of %s", ", ".join(config.planned))
        return
    log.warning(
        "score: %d forecast row(s) of %d series in %d segment(s) had no plan of %s in %s: "
        "the series' median of the last 12 months stood in (plan_missing = true); land the "
        "plan files of those series and months and rerun score to replace them",
        rows,
        series,
        len(missing),
        ", ".join(config.planned),
        names.PLANS,
    )


#: A series without forecast is reported when it had a value within this many months.
RECENT_MONTHS = 12


def series_without_forecast(
    history: DataFrame, forecast_rows: DataFrame, run_month: date
) -> list[str]:
    """The series of ``history`` with a value in the :data:`RECENT_MONTHS` up to
    ``run_month`` that have no row in ``forecast_rows``, sorted."""
    since = F.add_months(F.lit(run_month), -RECENT_MONTHS)
    recent = history.where(F.col("month") > since).select("series_id").distinct()
    forecast = forecast_rows.select("series_id").distinct()
    missing = recent.join(forecast, "series_id", "left_anti")
    return sorted(str(row["series_id"]) for row in missing.collect())


def _listing(names_: list[str], most: int = 20) -> str:
    shown = ", ".join(names_[:most])
    return shown if len(names_) <= most else f"{shown} and {len(names_) - most} more"


def run(ctx: RunContext, cfg: ScoreConfig) -> ScoreSummary:
    """Forecast every segment with a champion; replace the run month's forecasts."""
    table = ctx.table(names.FEATURES)
    if not ctx.tables.exists(table):
        raise RuntimeError(
            f"score: the feature table {table} does not exist: run the data "
            "tasks (ingest -> validate_data -> build_features) first"
        )
    gold = ctx.tables.read(table)
    # Locally, a Python worker imports the scoring modules while the driver works below.
    warm_up = None if ctx.on_databricks else WorkerWarmUp(ctx.spark)
    per_segment = gold.groupBy("segment").agg(F.max("month"), F.count(F.lit(1))).collect()
    newest = {r[0]: r[1] for r in per_segment}
    if not newest:
        raise RuntimeError(f"score: {table} has no rows: nothing to forecast")
    run_month = cfg.run_month or max(newest.values())
    segments = sorted(newest)
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, cfg.model_prefix)
    found = registry.segments_with(segments, CHAMPION)
    reconcile(ctx, registry, found, job_run_id=cfg.job_run_id)
    models = champions(ctx, registry, found)
    # A segment with no row in the run month (all of that month's rows quarantined, or the
    # segment stopped) would be forecast from its own older newest month: a stale origin
    # under this run month. Its series are named below with the other series without value.
    stale = {s: newest[s] for s in models if newest[s] < run_month}
    if stale:
        log.warning(
            "score: %d segment(s) have no value in %s and are not forecast (their newest "
            "month is older: that month's rows are in %s, or the segment stopped): %s",
            len(stale),
            run_month.strftime("%Y-%m"),
            ctx.table(names.QUARANTINE),
            _listing([f"{s} (newest {m:%Y-%m})" for s, m in sorted(stale.items())]),
        )
    summary = ScoreSummary(
        run_month,
        segments_scored=sorted(set(models) - set(stale)),
        segments_without_champion=sorted(set(segments) - set(models)),
        segments_on_fallback=sorted(s for s, m in models.items() if m.fallback and s not in stale),
    )
    summary.rows_in = sum(int(r[2]) for r in per_segment if r[0] in models)
    if summary.segments_without_champion:
        log.warning(
            "score: %d segment(s) have no champion and are skipped: %s",
            len(summary.segments_without_champion),
            ", ".join(summary.segments_without_champion),
        )
    if summary.segments_on_fallback:
        log.info(
            "score: %d segment(s) are forecast by their seasonal-naive fallback: %s",
            len(summary.segments_on_fallback),
            ", ".join(summary.segments_on_fallback),
        )
    history = gold.where(F.col("segment").isin(list(models)) & (F.col("month") <= run_month))
    attributes = [c for c in cfg.series_attributes if c in gold.columns and c != "segment"]
    keys = history.groupBy("series_id", "segment")
    latest_attributes = (
        keys.agg(*[F.max_by(c, "month").alias(c) for c in attributes])
        if attributes
        else keys.count().drop("count")
    )
    scored = {s: m for s, m in models.items() if s not in stale}
    model_rows = history.where(F.col("segment").isin(list(scored))).select(
        "segment", "series_id", "month", "y"
    )
    if cfg.planned_dataset is not None:
        model_rows = with_plan_rows(ctx, cfg.planned_dataset, history, scored, run_month)
    rows = forecasts(model_rows, scored, latest_attributes, run_month)
    if warm_up is not None:
        warm_up.wait()
    # Materialise once: the counts and the write must not run the models twice. Segments
    # spread over as many tasks as the session has cores (adaptive execution would put these
    # few rows in one task, one worker loading every champion in turn); one file per month.
    # Under Spark Connect (serverless) the cores are unknown: one task per segment.
    cores = default_parallelism(ctx.spark)
    tasks = min(len(scored), cores) if cores else len(scored)
    with grouped_tasks(ctx.spark, tasks):
        rows = rows.localCheckpoint(eager=True).coalesce(1)
    counts = (
        rows.groupBy("segment")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("series_id").alias("series"),
            F.max(SECONDS_COLUMN).alias("seconds"),
            F.sum(F.col("plan_missing").cast("int")).alias("plan_missing"),
            F.countDistinct(F.when(F.col("plan_missing"), F.col("series_id"))).alias(
                "plan_missing_series"
            ),
        )
        .collect()
    )
    log_missing_plans(counts, cfg.planned_dataset)
    summary.rows_out = sum(int(r["rows"]) for r in counts)
    summary.series_forecast = sum(int(r["series"]) for r in counts)
    record_segment_seconds({r["segment"]: float(r["seconds"] or 0.0) for r in counts})
    summary.series_not_forecast = series_without_forecast(history, rows, run_month)
    if summary.series_not_forecast:
        log.warning(
            "score: %d series of the scored segments have no forecast for %s (no value in "
            "%s: the series stopped, or that row is in %s): %s",
            len(summary.series_not_forecast),
            run_month.strftime("%Y-%m"),
            run_month.strftime("%Y-%m"),
            ctx.table(names.QUARANTINE),
            _listing(summary.series_not_forecast),
        )
    ctx.tables.write(
        rows.drop(SECONDS_COLUMN),
        ctx.table(names.FORECASTS),
        mode="overwrite",
        replaceWhere=f"run_month = DATE'{run_month.isoformat()}'",
        # A table written before forecast intervals existed gains their columns.
        mergeSchema="true",
    )
    log.info(
        "score %s: %d series forecast (%d rows) by %d segment champions; %d segment(s) "
        "without champion skipped",
        run_month.strftime("%Y-%m"),
        summary.series_forecast,
        summary.rows_out,
        len(summary.segments_scored),
        len(summary.segments_without_champion),
    )
    ctx.task_values.set("series_forecast", summary.series_forecast)
    ctx.handover.publish(
        TASK_KEY,
        {
            WITHOUT_CHAMPION_KEY: summary.segments_without_champion,
            ON_FALLBACK_KEY: summary.segments_on_fallback,
            RUN_MONTH_KEY: run_month.strftime("%Y-%m"),
        },
    )
    ctx.task_values.set("series_not_forecast", len(summary.series_not_forecast))
    ctx.task_values.set("run_month", run_month.strftime("%Y-%m"))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The score task's own options (bundle variables)."""
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config (its series attributes go on every forecast row)",
    )
    add_model_prefix_option(parser)
    parser.add_argument(
        "--run-month",
        default=None,
        help="YYYY-MM to forecast from (default: the feature table's newest)",
    )


def make_config(args: argparse.Namespace) -> ScoreConfig:
    """Typed config from the parsed options."""
    dataset = load_dataset_config(args.dataset)
    return ScoreConfig(
        model_prefix=args.model_prefix,
        series_attributes=tuple(series_attributes(dataset)),
        planned_dataset=dataset if dataset.planned else None,
        run_month=parse_month(args.run_month) if args.run_month else None,
        job_run_id=args.job_run_id,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-score``."""
    run_task(
        TASK_KEY,
        "Forecast the next months of every series with its segment's champion.",
        add_arguments,
        make_config,
        run,
        argv,
    )
