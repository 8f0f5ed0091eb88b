"""Task ``monitor``: forecast accuracy, the month's drift and retraining, alerts, the report.

1. Every forecast whose month now has an actual is scored: WAPE and bias per segment, target
   month and horizon go to the accuracy table (recomputed in full each run from the forecast
   table and the latest actuals, so a rerun writes the same rows).
2. Alerts: a segment whose one-month-ahead WAPE, pooled over the newest
   ``accuracy_window_months`` evaluated months, exceeds ``accuracy_alert_wape``. Alerts are
   logged, their segments handed over (``alerts``, in the job run's hand-over table) and
   counted (task value ``alert_count``); the task fails only with ``fail_on_alert``. The
   hand-over rows of job runs older than its retention are deleted then (the last task of
   the month: one small delete a month, :meth:`~demand_forecasting.platform.handover.
   HandOver.delete_expired`).
3. Cost per model: the job run's task times (run telemetry) priced at
   ``compute_cost_per_hour`` and split over the segment models
   (:mod:`demand_forecasting.monitoring.costs`) into the model cost table, one row per
   segment and task (a rerun of monitor for the same job run replaces its rows).
4. The run report (Markdown + PNG, :mod:`demand_forecasting.monitoring.report`): drift and
   retraining decisions, new champions, accuracy, cost per model, forecasts vs actuals and
   time per task, written under ``<state>/reports/<YYYY-MM>/`` locally and logged to the
   job's parent MLflow run as artifacts. It is written in a month with no forecasts too
   (before a ``require_approval`` target's first approval no segment has a champion): a
   segment without champion whose challenger awaits approval is the designed state (a
   warning, the report's top says what to do); one with nothing awaiting fails the run
   after the report (:class:`NoChampionError`).
5. On Databricks, the forecast table's Lakehouse monitor is created if it does not exist yet
   (:mod:`demand_forecasting.monitoring.lakehouse_monitor`; not a bundle resource, because
   the table only exists after the first run).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from pyspark import inheritable_thread_target
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import (
    DatasetConfig,
    add_month,
    load_dataset_config,
    parse_month,
)
from demand_forecasting.data.rules import (
    clean_text,
    file_month_column,
    month_stamp,
    text,
    with_series_and_month,
)
from demand_forecasting.models import approval_requests
from demand_forecasting.models.approve import not_awaiting_reason
from demand_forecasting.models.audit import AWAITING_APPROVAL as AWAITING_APPROVAL_ACTION
from demand_forecasting.models.command_context import approve_options
from demand_forecasting.models.fallback import is_fallback
from demand_forecasting.models.registry import (
    CHALLENGER,
    SegmentRegistry,
    add_model_prefix_option,
    awaits_approval,
    read_each_segment,
    trained_until,
    version_by_alias,
)
from demand_forecasting.models.tracking import DATASET_TAG
from demand_forecasting.monitoring import costs, telemetry
from demand_forecasting.monitoring.accuracy import (
    AccuracyAlert,
    accuracy_alerts,
    accuracy_by_segment,
    forecast_errors,
    recent_accuracy,
)
from demand_forecasting.monitoring.drift import approval_refresh_month
from demand_forecasting.monitoring.drift_table import PROVENANCE_COLUMNS
from demand_forecasting.monitoring.forecast_totals import forecast_totals, spark_forecast_totals
from demand_forecasting.monitoring.job_run import job_parent_run
from demand_forecasting.monitoring.lakehouse_monitor import (
    ForecastMonitorSpec,
    check_pause_status,
    ensure_forecast_monitor,
    workspace_quality_monitors,
)
from demand_forecasting.monitoring.quarantine_advice import EARLIER_MONTH_RULE
from demand_forecasting.monitoring.report import (
    APPROVE_THEN_SCORE,
    TELEMETRY_COLUMNS,
    ReportInputs,
    awaiting_first_approval,
    gap_listing,
    write_report,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame
from demand_forecasting.scoring.score import ON_FALLBACK_KEY, RUN_MONTH_KEY, series_without_forecast
from demand_forecasting.scoring.score import TASK_KEY as SCORE_TASK
from demand_forecasting.task import TaskInputError, run_task

if TYPE_CHECKING:
    from databricks.sdk.service.catalog import QualityMonitorsAPI

log = logging.getLogger(__name__)

TASK_KEY = "monitor"

REPORTS_FOLDER = "reports"
#: Up to this many forecast rows, the report's forecast totals come from one collect of the
#: forecasts; above it, from aggregates computed on Spark (the same figures).
REPORT_DRIVER_MAX_ROWS = 500_000


class NoChampionError(TaskInputError, RuntimeError):
    """Segments have data but no champion, and nothing of theirs awaits approval: nothing
    will forecast them until someone acts (the message names each and why). Monitor raises
    it after writing the report. A segment whose challenger awaits approval is not one: that
    is the designed state of a ``require_approval`` target before its first approval."""


class AccuracyAlertError(TaskInputError, RuntimeError):
    """Accuracy alerts were raised and the bundle says to fail on them."""


class UpstreamTaskFailedError(TaskInputError, RuntimeError):
    """A task of this job run failed although the run went on (train failing for some
    segments): monitor fails the run at its end, on purpose, so that the failure is alerted
    (the message says which task and what to do)."""


#: Upstream result states that do not fail the run (``{{tasks.<task>.result_state}}``).
UPSTREAM_OK = frozenset({"success", "excluded"})


def failed_tasks(frame: pd.DataFrame, states: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{task: error}`` of the job run's failed tasks (pure): each task of ``states`` whose
    result state is not success or excluded (the authority: a process killed mid-task
    records no telemetry), and each task whose last attempt in the telemetry ``frame``
    failed (rows in the order the attempts started; monitor itself left out). The error is
    the telemetry's, else the result state."""
    last = pd.DataFrame(columns=["task", "status", "error"])
    if not frame.empty and "status" in frame:
        others = frame[frame["task"] != "monitor"]
        last = others.groupby("task", sort=False).tail(1)
    errors = {
        str(task): str(error) if isinstance(error, str) and error else ""
        for task, error in zip(
            last["task"], last["error"] if "error" in last else [None] * len(last), strict=True
        )
    }
    failed = {
        str(task): errors.get(str(task)) or "no error recorded"
        for task, status in zip(last["task"], last["status"], strict=True)
        if status == telemetry.FAILED
    }
    for task, state in (states or {}).items():
        if state not in UPSTREAM_OK:
            failed[task] = errors.get(task) or f"result state {state or 'unknown'}"
    return failed


@dataclass(frozen=True)
class MonitorConfig:
    """Parameters of ``monitor`` (bundle variables).

    Raises:
        ValueError: a threshold or window out of range.
    """

    alert_wape: float = 0.15
    window_months: int = 3
    fail_on_alert: bool = False
    run_month: date | None = None
    job_run_id: str | None = None
    experiment: str | None = None
    history_months: int = 36
    driver_max_rows: int = REPORT_DRIVER_MAX_ROWS
    cost_per_hour: float = 1.0
    #: The Lakehouse monitor (Databricks only): its dashboard folder (None: not checked),
    #: who hears of failed refreshes, and whether its schedule is paused.
    monitor_assets_dir: str | None = None
    alert_emails: tuple[str, ...] = ()
    monitor_pause_status: str = "PAUSED"
    #: ``{task: result state}`` of upstream tasks that may fail without stopping the run
    #: (``{{tasks.train.result_state}}``): monitor fails at its end unless each succeeded or
    #: was excluded.
    upstream_states: dict[str, str] = field(default_factory=dict)
    #: Months each forecast should cover (bundle variable ``horizon``; None: not checked).
    horizon: int | None = None
    #: Registered models are ``<catalog>.<schema>.<model_prefix>_<segment>`` (bundle variable
    #: ``model_prefix``): where monitor looks up why a segment has no champion.
    model_prefix: str = "demand"
    #: Months a challenger awaiting approval waits before check_drift retrains its segment
    #: (bundle variable ``approval_wait_months``): the report marks those due or overdue.
    approval_wait_months: int = 3
    #: The dataset (bundle variable ``dataset``): how quarantined rows name their series and
    #: month, to count those corrected since (None: not counted).
    dataset: DatasetConfig | None = None

    def __post_init__(self) -> None:
        check_pause_status(self.monitor_pause_status)
        if self.alert_wape <= 0:
            raise ValueError(
                f"--accuracy-alert-wape={self.alert_wape}: must be > 0 (0.15 alerts above 15% WAPE)"
            )
        if self.approval_wait_months < 0:
            raise ValueError(
                f"--approval-wait-months={self.approval_wait_months}: must be >= 0 (as "
                "check_drift's)"
            )
        if self.window_months < 1:
            raise ValueError(f"--accuracy-window-months={self.window_months}: must be >= 1")
        if self.cost_per_hour < 0:
            raise ValueError(
                f"--compute-cost-per-hour={self.cost_per_hour}: must be >= 0 (what one hour "
                "of the job's compute costs)"
            )
        if self.driver_max_rows < 0:
            raise ValueError(
                f"--report-driver-max-rows={self.driver_max_rows}: must be >= 0 "
                "(0 always aggregates on Spark)"
            )


@dataclass
class MonitorSummary:
    """What ``monitor`` found (``rows_in``/``rows_out`` feed the telemetry)."""

    run_month: date
    alerts: list[AccuracyAlert] = field(default_factory=list)
    report: Path | None = None
    rows_in: int = 0
    rows_out: int = 0


def new_champions(forecasts: pd.DataFrame, run_month: date) -> dict[str, str]:
    """Segments whose forecasting version changed since the segment's own previous run
    month with forecasts (pure); a segment never forecast before is new (so is every segment
    in the first run month). A segment skipped for a month is compared with the month before.

    Args:
        forecasts: ``segment, run_month, model_version`` (one row per combination is enough).
    """
    if forecasts.empty:
        return {}

    def newest_version(rows: pd.DataFrame) -> pd.Series:
        # One champion forecasts a segment in a month; versions compare as numbers ("10" > "9").
        order = rows.assign(_number=pd.to_numeric(rows["model_version"], errors="coerce"))
        order = order.sort_values(["run_month", "_number"])
        return order.drop_duplicates("segment", keep="last").set_index("segment")["model_version"]

    before = newest_version(forecasts[forecasts["run_month"] < run_month])
    now = newest_version(forecasts[forecasts["run_month"] == run_month])
    changed = {}
    for segment, version in now.items():
        old = before.get(segment)
        if old != version:
            was = f"v{old} -> " if old is not None else "new "
            changed[str(segment)] = f"{was}v{version}"
    return changed


def _read(ctx: RunContext, name: str) -> DataFrame | None:
    full = ctx.table(name)
    return ctx.tables.read(full) if ctx.tables.exists(full) else None


@dataclass
class Measured:
    """Past forecasts scored against the actuals known now."""

    run_month: date
    forecasts: DataFrame
    actuals: DataFrame
    accuracy: DataFrame
    accuracy_rows: pd.DataFrame
    alerts: list[AccuracyAlert]
    forecast_rows: int = 0

    def release(self) -> None:
        """Drop the cached forecasts and actuals."""
        self.forecasts.unpersist()
        self.actuals.unpersist()


def measure(ctx: RunContext, cfg: MonitorConfig) -> Measured:
    """Accuracy of every forecast whose month has an actual, and the alerts it raises.

    The run month is ``cfg.run_month``, else the one this job run's score task forecast,
    else the forecast table's newest. A month score forecast nothing (no segment has a
    champion yet: in a target with ``require_approval``, every month before the first
    approval) is measured all the same, with no forecasts of its own, so that its report is
    written; :func:`run` then decides whether that is a failure.

    Raises:
        RuntimeError: there are no forecast or feature tables yet (score writes the forecast
            table even when it forecasts nothing), or the forecast table is empty and score
            did not run in this job run, or it has no forecasts of ``cfg.run_month``.
    """
    forecasts = _read(ctx, names.FORECASTS)
    gold = _read(ctx, names.FEATURES)
    if forecasts is None or gold is None:
        raise RuntimeError(
            f"monitor: {ctx.table(names.FORECASTS)} or "
            f"{ctx.table(names.FEATURES)} does not exist: run score first"
        )
    # Read once, queried several times below (accuracy, report totals, versions).
    # A table written before forecast intervals existed has no bounds (accuracy_by_segment
    # then counts no interval).
    bounds = [c for c in ("forecast_lower", "forecast_upper") if c in forecasts.columns]
    forecasts = forecasts.select(
        "segment",
        "series_id",
        "month",
        "horizon",
        "run_month",
        "forecast",
        *bounds,
        "model_version",
    ).cache()
    latest = forecasts.agg(F.max("run_month"), F.count(F.lit(1))).first()
    run_month = (
        cfg.run_month
        or _scored_run_month(ctx)
        or (latest[0] if latest else None)
        # No forecasts at all: the newest month the job checked (before the first approval).
        or max(_checked_run_months(ctx), default=None)
    )
    if run_month is None:
        forecasts.unpersist()
        raise RuntimeError(f"monitor: {ctx.table(names.FORECASTS)} is empty: run score first")
    if cfg.run_month is not None:
        _require_run_month(ctx, forecasts, cfg.run_month)
    actuals = gold.select("series_id", "segment", "month", "y").cache()
    accuracy = accuracy_by_segment(forecast_errors(forecasts, actuals))
    accuracy_rows = accuracy.toPandas()
    alerts = accuracy_alerts(accuracy_rows, cfg.alert_wape, 1, cfg.window_months)
    forecast_rows = int(latest[1]) if latest else 0
    return Measured(run_month, forecasts, actuals, accuracy, accuracy_rows, alerts, forecast_rows)


def _scored_run_month(ctx: RunContext) -> date | None:
    """The run month this job run's score task forecast (None: score did not run in it, as
    for the ``report`` command)."""
    month = ctx.handover.read(SCORE_TASK, RUN_MONTH_KEY, None)
    return parse_month(month) if month else None


def _checked_run_months(ctx: RunContext) -> list[date]:
    """The run months check_drift wrote drift rows for: months the monthly job ran, with
    forecasts or not (before a ``require_approval`` target's first approval, none)."""
    drift = _read(ctx, names.DRIFT)
    if drift is None:
        return []
    return [row[0] for row in drift.select("run_month").distinct().collect()]


def _require_run_month(ctx: RunContext, forecasts: DataFrame, run_month: date) -> None:
    """Raise unless ``forecasts`` has rows of ``run_month``, or the job ran that month
    without forecasting (no champion yet: its report says why); else a report of it would
    be empty."""
    if forecasts.where(F.col("run_month") == F.lit(run_month)).limit(1).count():
        return
    if run_month in _checked_run_months(ctx):
        log.info(
            "monitor: %s has no forecasts of run month %s, which the job ran: reporting it "
            "without forecasts (no segment had a champion)",
            ctx.table(names.FORECASTS),
            f"{run_month:%Y-%m}",
        )
        return
    first, last = forecasts.agg(F.min("run_month"), F.max("run_month")).first() or (None, None)
    with_forecasts = f"{first:%Y-%m} .. {last:%Y-%m}" if first and last else "none"
    raise RuntimeError(
        f"monitor: {ctx.table(names.FORECASTS)} has no forecasts of run month "
        f"{run_month:%Y-%m} (run months with forecasts: {with_forecasts}), and the monthly "
        "job has not run that month; give a month it ran, or run the monthly job for that "
        "month first"
    )


def report_month(ctx: RunContext, cfg: MonitorConfig) -> Path:
    """Write the report of ``cfg.run_month`` (default: the newest) from the tables as they are.

    It records no list of versions awaiting approval (the job's report did); it prints
    ``reported:<month>`` only when the versions it shows are the ones recorded.
    """
    measured = measure(ctx, cfg)
    try:
        inputs = gather_report_inputs(ctx, cfg, measured)
    finally:
        measured.release()
    awaiting = inputs.awaiting_approval
    shown = dict(zip(awaiting["segment"], awaiting["version"], strict=True))
    if shown and shown == approval_requests.listed(ctx, inputs.run_month):
        inputs.approvals_reported = inputs.run_month
    return write_report(_report_folder(ctx, measured.run_month), inputs)


def record_approval_requests(ctx: RunContext, cfg: MonitorConfig, inputs: ReportInputs) -> None:
    """Record the versions the report lists as awaiting approval as the run month's
    (:mod:`~demand_forecasting.models.approval_requests`), so that the report can offer
    ``reported:<month>`` for them (it does when any awaits: a failed write fails monitor,
    and its rerun writes both again)."""
    awaiting = inputs.awaiting_approval
    approval_requests.record(ctx, inputs.run_month, awaiting, inputs.generated_at, cfg.job_run_id)
    if not awaiting.empty:
        log.info(
            "monitor %s: %d version(s) awaiting approval recorded in %s; the approve job's "
            "segments=reported:%s approves them",
            f"{inputs.run_month:%Y-%m}",
            len(awaiting),
            ctx.table(names.APPROVAL_REQUESTS),
            f"{inputs.run_month:%Y-%m}",
        )


def run(ctx: RunContext, cfg: MonitorConfig) -> MonitorSummary:
    """Score past forecasts, raise alerts and write the run report."""
    measured = measure(ctx, cfg)
    run_month, accuracy_rows, alerts = measured.run_month, measured.accuracy_rows, measured.alerts
    for alert in alerts:
        log.warning("ACCURACY ALERT %s", alert.describe())
    folder = _report_folder(ctx, run_month)
    # The accuracy table's commit (Spark, in the JVM) runs on a thread while the report is
    # gathered and drawn (mostly Python): the report does not read that table; the model
    # costs follow it there once gathered. Leaving the block waits for the writes and raises
    # their error, if any. The thread carries the task's Spark properties.
    write = inheritable_thread_target(ctx.spark)(ctx.tables.write)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-accuracy") as pool:
        written = pool.submit(
            write,
            # One file: one row per segment, month and horizon; more only add write tasks.
            rows_frame(ctx.spark, accuracy_rows, measured.accuracy.schema).coalesce(1),
            ctx.table(names.ACCURACY),
            mode="overwrite",
            # The table is rewritten whole; one from before interval coverage gains it.
            overwriteSchema="true",
        )
        try:
            inputs = gather_report_inputs(ctx, cfg, measured)
        finally:
            measured.release()
        # The versions awaiting approval, recorded for ``reported:<month>`` (one small Delta
        # commit, ~3 s locally) while the report is drawn, which says so.
        requests_written = pool.submit(
            inheritable_thread_target(ctx.spark)(record_approval_requests), ctx, cfg, inputs
        )
        if not inputs.awaiting_approval.empty:
            inputs.approvals_reported = inputs.run_month
        costs_written = (
            pool.submit(
                inheritable_thread_target(ctx.spark)(write_model_costs),
                ctx,
                cfg,
                run_month,
                inputs.costs,
            )
            if cfg.job_run_id is not None and not inputs.costs.empty
            else None
        )
        report = write_report(folder, inputs)
        written.result()
        requests_written.result()
        if costs_written is not None:
            costs_written.result()
    log.info(
        "monitor %s: %d accuracy rows, %d alert(s); report %s",
        run_month.strftime("%Y-%m"),
        len(accuracy_rows),
        len(alerts),
        report,
    )
    _log_to_parent_run(ctx, cfg, folder, run_month, inputs)
    ctx.handover.publish(TASK_KEY, {"alerts": [a.segment for a in alerts]})
    ctx.handover.delete_expired()
    ctx.task_values.set("alert_count", len(alerts))
    ctx.task_values.set("report", str(report))
    ensure_lakehouse_monitor(ctx, cfg)
    summary = MonitorSummary(
        run_month,
        alerts,
        report,
        rows_in=int(accuracy_rows["n_series"].sum()) if not accuracy_rows.empty else 0,
        rows_out=len(accuracy_rows),
    )
    _warn_awaiting_first_approval(inputs, report)
    if inputs.failed_tasks:
        raise UpstreamTaskFailedError(
            f"{len(inputs.failed_tasks)} task(s) of job run {cfg.job_run_id} failed: "
            + "; ".join(
                f"{task}: {error.splitlines()[0][:300]}"
                for task, error in inputs.failed_tasks.items()
            )
            + ". The run went on: segments that did not fail were validated, deployed and "
            "scored, the others are forecast by their champions, and the report is written. "
            "Fix the cause (the task's log has it) and retrain the failed segments with the "
            "training job (--segments); monitor fails so that the run is alerted."
            + (f" Also: {_no_champion_message(inputs)}" if inputs.no_champion_reasons else "")
        )
    if inputs.no_champion_reasons:
        raise NoChampionError(f"monitor {run_month:%Y-%m}: {_no_champion_message(inputs)}")
    if alerts and cfg.fail_on_alert:
        raise AccuracyAlertError(
            f"{len(alerts)} segment(s) over the WAPE alert threshold {cfg.alert_wape:.0%}: "
            + "; ".join(a.describe() for a in alerts)
            + ". Review the report; retrain them with the training job (--segments) or raise "
            "accuracy_alert_wape. fail_on_alert is set, so the run fails."
        )
    return summary


def _warn_awaiting_first_approval(inputs: ReportInputs, report: Path) -> None:
    """Log the segments not forecast because their first version awaits approval: the
    designed state of a ``require_approval`` target until someone approves, so a warning and
    not a failure."""
    waiting = awaiting_first_approval(inputs)
    if not waiting:
        return
    log.warning(
        "monitor %s: %d segment(s) have no champion yet and are not forecast: their "
        "challengers await approval (require_approval), as designed before the first "
        "approval: %s. Review the report's 'Awaiting approval' (%s), then %s.",
        f"{inputs.run_month:%Y-%m}",
        len(waiting),
        ", ".join(waiting),
        report,
        APPROVE_THEN_SCORE,
    )


def _no_champion_message(inputs: ReportInputs) -> str:
    """The error for segments with no champion and nothing awaiting approval: each with why."""
    reasons = inputs.no_champion_reasons
    return (
        f"{len(reasons)} segment(s) have data but no champion, and nothing awaits approval, "
        "so nothing forecasts them: "
        + "; ".join(f"{s}: {why}" for s, why in sorted(reasons.items()))
        + ". Retrain them with the training job (--segments), or make a version champion "
        "(rollback --to); the report is written and names them at its top."
    )


def ensure_lakehouse_monitor(
    ctx: RunContext,
    cfg: MonitorConfig,
    quality_monitors: Callable[[], QualityMonitorsAPI] = workspace_quality_monitors,
) -> bool | None:
    """On Databricks, create the forecast table's Lakehouse monitor if it is missing.

    Args:
        ctx: the run context; nothing happens off Databricks (no workspace client is built).
        cfg: the task's config (``monitor_assets_dir`` None: nothing happens).
        quality_monitors: gives ``WorkspaceClient().quality_monitors`` (tests pass a fake).

    Returns:
        True: created; False: it existed; None: not checked (local run, or no assets folder).

    Raises:
        LakehouseMonitorError: the lookup or creation failed (the message says what to check).
    """
    if not ctx.on_databricks:
        log.info("local run: Lakehouse Monitoring is Databricks only, no monitor to check")
        return None
    if cfg.monitor_assets_dir is None:
        log.warning("no --quality-monitor-assets-dir: the Lakehouse monitor is not checked")
        return None
    spec = ForecastMonitorSpec(
        table_name=ctx.table(names.FORECASTS),
        output_schema_name=f"{ctx.catalog}.{ctx.schema}",
        assets_dir=cfg.monitor_assets_dir,
        alert_emails=cfg.alert_emails,
        pause_status=cfg.monitor_pause_status,
    )
    return ensure_forecast_monitor(quality_monitors(), spec)


#: Landing files with quarantined rows shown in the report, newest first.
QUARANTINE_FILES_SHOWN = 5


def quarantine_summary(ctx: RunContext, dataset: DatasetConfig | None = None) -> dict[str, Any]:
    """For the report: ``quarantine`` (the newest files with quarantined rows: ``source_file,
    rows, corrected, rules, validated_at``), ``quarantined_rows`` (all rows, None without a
    table), ``quarantined_corrected`` (of those, the rows corrected since) and
    ``quarantine_row_months`` (:func:`earlier_month_rows` of the files listed).

    A quarantined row is corrected when silver now holds a value of its series and month from
    a later load (by silver's own order: load time, batch, file name). Its series id and month
    are parsed from the row as landed, as validation parses them (``dataset``); a row whose id
    or month does not parse is never corrected. Without ``dataset``, or when the quarantine
    table does not have the dataset's columns, nothing is counted (no ``corrected`` column,
    ``quarantined_corrected`` None).
    """
    table = _read(ctx, names.QUARANTINE)
    if table is None:
        return {
            "quarantine": pd.DataFrame(),
            "quarantined_rows": None,
            "quarantined_corrected": None,
        }
    by_file = table.groupBy("source_file").agg(
        F.count(F.lit(1)).alias("rows"),
        F.array_join(F.array_sort(F.collect_set("failed_rule")), ", ").alias("rules"),
        F.max("validated_at").alias("validated_at"),
    )
    corrected = corrected_by_file(ctx, table, dataset)
    if corrected is not None:
        by_file = by_file.join(corrected, "source_file", "left").select(
            "source_file",
            "rows",
            F.coalesce("corrected", F.lit(0)).alias("corrected"),
            "rules",
            "validated_at",
        )
    frame = by_file.toPandas()
    newest = frame.sort_values(["validated_at", "source_file"], ascending=[False, True])
    newest["source_file"] = newest["source_file"].map(lambda p: str(p).rsplit("/", 1)[-1])
    newest["validated_at"] = pd.to_datetime(newest["validated_at"]).dt.strftime("%Y-%m-%d %H:%M")
    shown = newest.head(QUARANTINE_FILES_SHOWN).reset_index(drop=True)
    return {
        "quarantine": shown,
        "quarantined_rows": int(frame["rows"].sum()),
        "quarantined_corrected": int(frame["corrected"].sum()) if corrected is not None else None,
        "quarantine_row_months": earlier_month_rows(table, dataset, list(shown["source_file"])),
    }


def earlier_month_rows(
    quarantine: DataFrame, dataset: DatasetConfig | None, files: list[str]
) -> dict[str, list[str]]:
    """``{file: [YYYY-MM, ...]}``: the months of the rows of ``files`` (base names) that broke
    ``month_not_before_file_month`` (each belongs in a correction file of its own month),
    parsed as validation parses them; empty without ``dataset`` or such rows."""
    if dataset is None or dataset.month_column not in quarantine.columns:
        return {}
    rule = F.lit(EARLIER_MONTH_RULE)
    broke = (
        F.array_contains("failed_rules", rule)
        if "failed_rules" in quarantine.columns
        else F.col("failed_rule") == rule
    )
    month_text = text(dataset.month_column)
    rows = (
        quarantine.where(broke)
        .withColumn(month_text, clean_text(dataset.month_column))
        .select(
            F.regexp_extract("source_file", r"([^/]*)$", 1).alias("file"),
            F.date_format(month_stamp(dataset), "yyyy-MM").alias("month"),
        )
        .where(F.col("month").isNotNull())
        .where(F.col("file").isin(files))
        .distinct()
        .collect()
    )
    found: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: (r["file"], r["month"])):
        found.setdefault(row["file"], []).append(row["month"])
    return found


def corrected_by_file(
    ctx: RunContext, quarantine: DataFrame, dataset: DatasetConfig | None
) -> DataFrame | None:
    """``source_file, corrected``: per landing file, its quarantined rows whose series and month
    silver now holds a value of from a later load (files with none are left out); None when
    they cannot be counted (no ``dataset``, or a quarantine table without its columns).

    One join of silver with the quarantine's keys (small: broadcast), silver read only where
    it has a value.
    """
    if dataset is None:
        return None
    needed = {*dataset.canonical_columns, "source_file", "load_time", "batch_id"}
    missing = sorted(needed - set(quarantine.columns))
    if missing:
        log.warning(
            "monitor: %s has no column(s) %s of dataset %r: the report does not count the "
            "quarantined rows corrected since",
            ctx.table(names.QUARANTINE),
            missing,
            dataset.name,
        )
        return None
    # Rows of one file, series, month and load count together (duplicates are quarantined
    # as often as they landed).
    keys = (
        with_series_and_month(quarantine, dataset)
        .where(F.col("_series_id").isNotNull() & F.col("_month").isNotNull())
        .groupBy("source_file", "_series_id", "_month", "load_time", "batch_id")
        .agg(F.count(F.lit(1)).alias("_rows"))
        .select(
            F.col("source_file").alias("_q_file"),
            "_series_id",
            "_month",
            F.struct("load_time", "batch_id", "source_file").alias("_q_load"),
            "_rows",
        )
    )
    silver = _read(ctx, names.SILVER)
    if silver is None:
        return keys.limit(0).select(
            F.col("_q_file").alias("source_file"), F.col("_rows").alias("corrected")
        )
    values = silver.where(F.col("y").isNotNull()).select(
        "series_id", "month", F.struct("load_time", "batch_id", "source_file").alias("_s_load")
    )
    later = values.join(
        F.broadcast(keys),
        (F.col("series_id") == F.col("_series_id"))
        & (F.col("month") == F.col("_month"))
        & (F.col("_s_load") > F.col("_q_load")),
    )
    return later.groupBy(F.col("_q_file").alias("source_file")).agg(
        F.sum("_rows").alias("corrected")
    )


def horizon_mismatches(forecasts: pd.DataFrame, horizon: int | None) -> dict[str, int]:
    """``{segment: months}`` of the segments whose run-month forecasts (``segment, month``
    rows) cover another number of months than ``horizon`` (None: none checked)."""
    if horizon is None or forecasts.empty:
        return {}
    months = forecasts.groupby("segment")["month"].nunique()
    return {str(s): int(n) for s, n in sorted(months.items()) if int(n) != horizon}


#: Months up to the run month searched for gaps (months series have no value in).
GAP_MONTHS = 12


def gap_months(actuals: DataFrame, run_month: date, months: int = GAP_MONTHS) -> pd.DataFrame:
    """The months of the ``months`` up to ``run_month`` in which series of ``actuals`` (gold's
    ``series_id, month, y``; a gap row has ``y`` null) have no value: ``month, gaps, series``
    (gap rows, and all rows of the month), oldest first; empty when there is none."""
    since = F.add_months(F.lit(run_month), -months)
    per_month = (
        actuals.where((F.col("month") > since) & (F.col("month") <= F.lit(run_month)))
        .groupBy("month")
        .agg(
            F.count_if(F.col("y").isNull()).alias("gaps"),
            F.count(F.lit(1)).alias("series"),
        )
        .where(F.col("gaps") > 0)
        .toPandas()
    )
    return per_month.sort_values("month").reset_index(drop=True)


def gather_report_inputs(ctx: RunContext, cfg: MonitorConfig, measured: Measured) -> ReportInputs:
    """Read the small frames the report shows.

    The forecast totals come from one collect of the forecasts when they are at most
    ``cfg.driver_max_rows`` rows (:func:`forecast_totals`), else from Spark aggregates: the
    report never needs the series-level rows on the driver at scale.
    """
    forecasts, run_month = measured.forecasts, measured.run_month
    since = F.add_months(F.lit(run_month), -cfg.history_months)
    actuals = measured.actuals.where(F.col("month") > since)
    # Totals over the series that were forecast, so that actual and forecast lines compare.
    if measured.forecast_rows <= cfg.driver_max_rows:
        totals = forecast_totals(forecasts.toPandas(), run_month, cfg.history_months)
        actuals = actuals.where(F.col("series_id").isin(sorted(totals.series)))
    else:
        totals = spark_forecast_totals(forecasts, run_month, since)
        this_run = forecasts.where(F.col("run_month") == F.lit(run_month))
        actuals = actuals.join(this_run.select("series_id").distinct(), "series_id", "left_semi")
    actual_totals = actuals.groupBy("segment", "month").agg(F.sum("y").alias("y")).toPandas()
    drift = run_month_drift(ctx, run_month)
    telemetry = job_run_telemetry(ctx, cfg.job_run_id)
    allocation = costs.allocate(telemetry, totals.series_per_segment, cfg.cost_per_hour)
    # check_drift writes a row for every segment with data, champion or not.
    current = totals.current
    all_segments = set(drift["segment"]) | set(current["segment"])
    not_forecast = sorted(all_segments - set(current["segment"]))
    without_data = segments_without_value(measured.actuals, not_forecast, run_month)
    off_horizon = horizon_mismatches(current, cfg.horizon)
    if off_horizon:
        log.warning(
            "monitor: %d segment(s) forecast another number of months than the horizon of "
            "%d (their champion was trained for it, and no candidate at %d months has passed "
            "validation yet; check_drift retrains them every month): %s",
            len(off_horizon),
            cfg.horizon,
            cfg.horizon,
            ", ".join(f"{s} ({n})" for s, n in off_horizon.items()),
        )
    gaps = gap_months(measured.actuals, run_month)
    if not gaps.empty:
        log.warning(
            "monitor %s: series have no value in month(s) inside their span (gaps in %s; a "
            "month file that never arrived, or rows quarantined): %s",
            f"{run_month:%Y-%m}",
            ctx.table(names.SILVER),
            gap_listing(gaps),
        )
    on_fallback = ctx.handover.read(SCORE_TASK, ON_FALLBACK_KEY, None)
    if on_fallback is None:  # not in the job run (the report command): ask the registry
        on_fallback = fallback_segments(ctx, run_month)
    series_not_forecast = series_not_forecast_reasons(
        ctx, cfg.dataset, measured, sorted(set(current["segment"]))
    )
    without_champion = [s for s in not_forecast if s not in without_data]
    waiting = awaiting_approval(ctx, run_month, cfg.approval_wait_months)
    unexplained = sorted(set(without_champion) - set(waiting["segment"]))
    return ReportInputs(
        run_month=run_month,
        target=ctx.target,
        job_run_id=cfg.job_run_id,
        generated_at=ctx.clock(),
        series_forecast=totals.series_count,
        segments_without_champion=without_champion,
        segments_without_data=without_data,
        series_not_forecast=series_not_forecast,
        drift=drift,
        accuracy=recent_accuracy(measured.accuracy_rows, 1, cfg.window_months),
        alerts=measured.alerts,
        forecasts=current,
        past_forecasts=totals.past,
        actuals=actual_totals,
        telemetry=telemetry,
        new_champions=new_champions(totals.versions, run_month),
        segments_on_fallback=list(on_fallback),
        horizon=cfg.horizon,
        segments_off_horizon=off_horizon,
        awaiting_approval=waiting,
        no_champion_reasons=no_champion_reasons(ctx, cfg.model_prefix, unexplained),
        costs=allocation,
        job_cost=costs.job_cost(telemetry, cfg.cost_per_hour),
        cost_per_hour=cfg.cost_per_hour,
        failed_tasks=failed_tasks(telemetry, cfg.upstream_states),
        **quarantine_summary(ctx, cfg.dataset),
        gaps=gaps,
        month_format=cfg.dataset.month_format if cfg.dataset is not None else None,
        approve_options=approve_options(
            ctx.target, ctx.catalog, ctx.schema, cfg.model_prefix, databricks=ctx.on_databricks
        ),
    )


#: The drift table's columns the report shows (the last two: who decided, and when).
REPORT_DRIFT_COLUMNS = ["segment", "feature", "psi", "psi_critical", "breach", "decision"]


def run_month_drift(ctx: RunContext, run_month: date) -> pd.DataFrame:
    """The run month's drift rows for the report, with the job run that decided each and when
    (:data:`~demand_forecasting.monitoring.drift_table.PROVENANCE_COLUMNS`; absent from a
    table written before they existed)."""
    table = _read(ctx, names.DRIFT)
    if table is None:
        return pd.DataFrame(columns=REPORT_DRIFT_COLUMNS)
    recorded = [c for c in PROVENANCE_COLUMNS if c in table.columns]
    return (
        table.where(F.col("run_month") == F.lit(run_month))
        .select(*REPORT_DRIFT_COLUMNS, *recorded)
        .toPandas()
    )


def series_not_forecast_reasons(
    ctx: RunContext, dataset: DatasetConfig | None, measured: Measured, segments: list[str]
) -> dict[str, str]:
    """``{series_id: why}`` of the series of the forecast ``segments`` with a recent value but
    no forecast of the run month (as score finds them:
    :func:`~demand_forecasting.scoring.score.series_without_forecast`), read from the tables,
    so the ``report`` command finds them too. Why: the run month's row is in quarantine, or
    the series has no value in it (it stopped, or its row never arrived)."""
    run_month = measured.run_month
    if not segments:
        return {}
    this_run = measured.forecasts.where(F.col("run_month") == F.lit(run_month))
    history = measured.actuals.where(F.col("segment").isin(segments))
    missing = series_without_forecast(history, this_run, run_month)
    if not missing:
        return {}
    quarantined = quarantined_series(ctx, dataset, missing, run_month)
    month = f"{run_month:%Y-%m}"
    return {
        s: quarantined.get(s, f"no value in {month}: the series stopped, or its row did not arrive")
        for s in missing
    }


def quarantined_series(
    ctx: RunContext, dataset: DatasetConfig | None, series: list[str], month: date
) -> dict[str, str]:
    """``{series_id: why}`` of those of ``series`` with a quarantined row of ``month``, or a
    quarantined row in ``month``'s own landing file whose month is another or does not parse
    (the month's value most likely came in it). Empty without ``dataset`` or a quarantine
    table (their rows cannot be parsed, or there are none)."""
    quarantine = _read(ctx, names.QUARANTINE)
    if dataset is None or quarantine is None:
        return {}
    if not {*dataset.canonical_columns} <= set(quarantine.columns):
        return {}
    in_month_file = file_month_column(dataset) == F.lit(month)
    rows = (
        with_series_and_month(quarantine, dataset)
        .where(
            F.col("_series_id").isin(series) & ((F.col("_month") == F.lit(month)) | in_month_file)
        )
        .select(
            "_series_id",
            (F.col("_month") == F.lit(month)).alias("of_month"),
            "source_file",
            "failed_rule",
        )
        .collect()
    )
    found: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: not r["of_month"]):  # a row of the month first
        if row["_series_id"] in found:
            continue
        found[str(row["_series_id"])] = (
            f"its {month:%Y-%m} row is in quarantine"
            if row["of_month"]
            else f"its row in {Path(row['source_file']).name}, the {month:%Y-%m} file, is in "
            f"quarantine (rule {row['failed_rule']})"
        )
    return found


def segments_without_value(actuals: DataFrame, segments: list[str], run_month: date) -> list[str]:
    """Of ``segments``, those with no value in ``run_month`` (score does not forecast them
    from an older month: their rows were quarantined, or the segment stopped), sorted."""
    if not segments:
        return []
    with_value = (
        actuals.where(
            F.col("segment").isin(segments)
            & (F.col("month") == F.lit(run_month))
            & F.col("y").isNotNull()
        )
        .select("segment")
        .distinct()
        .collect()
    )
    found = {row[0] for row in with_value}
    return [s for s in segments if s not in found]


def no_champion_reasons(
    ctx: RunContext, model_prefix: str, segments: Sequence[str]
) -> dict[str, str]:
    """``{segment: why}`` for segments with data, no champion and nothing awaiting approval,
    from each one's registry model (no registered model: train never registered one, or it
    failed; its newest version refused by validation, rolled back, or not marked for
    approval), read a few segments at a time. Empty for no segments (no registry read)."""
    if not segments:
        return {}
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, model_prefix)

    def why(segment: str) -> str:
        try:
            return not_awaiting_reason(registry, segment, None)
        except Exception as exc:  # the report and the error go on without the detail
            return f"its model {registry.name(segment)} could not be read: {exc}"

    return read_each_segment(list(segments), why)


#: Columns of :func:`awaiting_approval`.
#: ``model``: what the version is (a trained model, or the seasonal-naive fallback that
#: stands in for a refused one): an approver approving a fallback should know it.
#: ``refresh``: when check_drift retrains the segment if nobody approves the version
#: (:func:`approval_refresh`).
AWAITING_COLUMNS = [
    "segment",
    "version",
    "model",
    "marked",
    "refresh",
    "candidate_mase",
    "champion_mase",
    "naive_mase",
]
#: The ``model`` of a trained version and of a fallback in :data:`AWAITING_COLUMNS`.
TRAINED_MODEL, FALLBACK_MODEL = "trained", "seasonal-naive fallback"


def awaiting_approval(
    ctx: RunContext, run_month: date | None = None, wait_months: int = 3
) -> pd.DataFrame:
    """The versions the approve job would promote, with the gate's evidence for the approver.

    A segment's version awaits approval while it is the ``challenger`` tagged
    ``deployment_status=awaiting_approval`` (deploy under ``require_approval``); the segments
    looked at are those the audit table has an ``awaiting_approval`` row for, their registry
    aliases read :data:`~demand_forecasting.models.registry.REGISTRY_READ_THREADS` at a time.

    Args:
        run_month: the month reported, for ``refresh`` (None: ``refresh`` is empty).
        wait_months: the bundle's ``approval_wait_months``, as check_drift applies it.

    Returns:
        :data:`AWAITING_COLUMNS` (``marked``: the newest ``awaiting_approval`` row's date;
        ``refresh``: :func:`approval_refresh`; the MASEs: the version's newest evaluation
        row), by segment; empty when none awaits.
    """
    audit = _read(ctx, names.AUDIT)
    if audit is None:
        return pd.DataFrame(columns=AWAITING_COLUMNS)
    marked = (
        audit.where(F.col("action") == AWAITING_APPROVAL_ACTION)
        .groupBy("segment", "model_name")
        .agg(F.max("at").alias("marked"))
        .toPandas()
    )
    if marked.empty:
        return pd.DataFrame(columns=AWAITING_COLUMNS)
    names_of = dict(
        zip(marked["segment"].astype(str), marked["model_name"].astype(str), strict=True)
    )

    def challenger(segment: str) -> tuple[str, str, str] | None:
        try:
            version = version_by_alias(ctx.mlflow, names_of[segment], CHALLENGER)
        except MlflowException:  # the report goes on without this segment's approval
            return None
        if not awaits_approval(version):  # approved since, or the model is gone
            return None
        model = FALLBACK_MODEL if is_fallback(version) else TRAINED_MODEL
        refresh = approval_refresh(trained_until(version), run_month, wait_months)
        return str(version.version), model, refresh

    versions = {
        s: v for s, v in read_each_segment(sorted(names_of), challenger).items() if v is not None
    }
    if not versions:
        return pd.DataFrame(columns=AWAITING_COLUMNS)
    rows = marked[marked["segment"].isin(list(versions))].copy()
    for index, column in enumerate(("version", "model", "refresh")):
        rows[column] = rows["segment"].map({s: v[index] for s, v in versions.items()})
    rows["marked"] = pd.to_datetime(rows["marked"]).dt.strftime("%Y-%m-%d")
    evaluations = _read(ctx, names.EVALUATIONS)
    figures = ["candidate_mase", "champion_mase", "naive_mase"]
    if evaluations is not None:
        newest = (
            evaluations.where(F.col("segment").isin(list(versions)))
            .groupBy("segment", F.col("candidate_version").alias("version"))
            .agg(F.max_by(F.struct(*figures), "evaluated_at").alias("figures"))
            .select("segment", "version", "figures.*")
            .toPandas()
        )
        rows = rows.merge(newest, on=["segment", "version"], how="left")
    for column in figures:
        if column not in rows.columns:
            rows[column] = float("nan")
    return rows[AWAITING_COLUMNS].sort_values("segment", ignore_index=True)


def approval_refresh(since: date | None, run_month: date | None, wait_months: int) -> str:
    """When check_drift retrains a segment whose version (trained on data up to
    ``since``) still awaits approval, as the report shows it: ``YYYY-MM``, with
    ``(next month)`` when that is the month after ``run_month``, or ``overdue since YYYY-MM``
    when it is ``run_month`` or earlier (its new candidate was refused or failed to train,
    or its newest candidate was refused recently and waits ``refused_retry_months``). Empty
    when either month is unknown."""
    if since is None or run_month is None:
        return ""
    refresh = approval_refresh_month(since, wait_months)
    if refresh <= run_month:
        return f"overdue since {refresh:%Y-%m}"
    if refresh == add_month(run_month):
        return f"{refresh:%Y-%m} (next month)"
    return f"{refresh:%Y-%m}"


def fallback_segments(ctx: RunContext, run_month: date) -> list[str]:
    """Segments whose ``run_month`` forecasts come from a seasonal-naive fallback version,
    from the registry's tags (for a report written outside the job run), sorted."""
    forecasts = _read(ctx, names.FORECASTS)
    if forecasts is None or "model_name" not in forecasts.columns:
        return []
    versions = (
        forecasts.where(F.col("run_month") == F.lit(run_month))
        .select("segment", "model_name", "model_version")
        .distinct()
        .collect()
    )
    found = set()
    for segment, name, version in versions:
        try:
            if is_fallback(ctx.mlflow.get_model_version(name, str(version))):
                found.add(str(segment))
        except Exception as exc:  # a deleted version: the report goes on without it
            log.warning("report: cannot read %s v%s from the registry: %s", name, version, exc)
    return sorted(found)


def job_run_telemetry(ctx: RunContext, job_run_id: str | None) -> pd.DataFrame:
    """The tasks of ``job_run_id`` so far, in the order they started: the telemetry table's
    rows plus those the local runner still holds for its one commit at the end of the run
    (:func:`telemetry.held`), so that reading them costs no commit of its own.

    Returns:
        ``task, status, duration_s, rows_in, rows_out, peak_memory_mb, error,
        segment_seconds`` (the last a dict per row, or None).
    """
    columns = [*TELEMETRY_COLUMNS, "error", "segment_seconds"]
    if job_run_id is None:
        return pd.DataFrame(columns=columns)
    records = [
        {"started_at": r.started_at.timestamp(), **{c: getattr(r, c) for c in columns}}
        for r in telemetry.held(ctx, job_run_id)
    ]
    table = _read(ctx, names.TELEMETRY)
    if table is not None:
        # A table written before the column existed has no segment seconds.
        measured = (
            F.col("segment_seconds")
            if "segment_seconds" in table.columns
            else F.lit(None).cast("map<string,double>").alias("segment_seconds")
        )
        written = table.where(F.col("job_run_id") == job_run_id).select(
            "started_at", *TELEMETRY_COLUMNS, "error", measured
        )
        records += [
            {**row.asDict(), "started_at": row["started_at"].timestamp()}
            for row in written.collect()
        ]
    if not records:
        return pd.DataFrame(columns=columns)
    records.sort(key=lambda record: record["started_at"])
    return pd.DataFrame.from_records(records, columns=columns)


def write_model_costs(
    ctx: RunContext, cfg: MonitorConfig, run_month: date, allocation: pd.DataFrame
) -> None:
    """Replace the job run's rows of the model cost table with ``allocation``."""
    rows = allocation.assign(
        job_run_id=cfg.job_run_id, run_month=run_month, cost_per_hour=cfg.cost_per_hour
    )
    ctx.tables.write(
        rows_frame(ctx.spark, rows, costs.MODEL_COSTS_SCHEMA).coalesce(1),
        ctx.table(names.MODEL_COSTS),
        mode="overwrite",
        replaceWhere=f"job_run_id = '{cfg.job_run_id}'",
    )


def _report_folder(ctx: RunContext, run_month: date) -> Path:
    if ctx.state_dir is None:
        return Path(tempfile.mkdtemp(prefix="report-"))
    return ctx.state_dir / REPORTS_FOLDER / run_month.strftime("%Y-%m")


def _log_to_parent_run(
    ctx: RunContext, cfg: MonitorConfig, folder: Path, run_month: date, inputs: ReportInputs
) -> None:
    if cfg.job_run_id is None or cfg.experiment is None:
        return
    try:
        run_id = job_parent_run(
            ctx.mlflow,
            cfg.experiment,
            cfg.job_run_id,
            target=ctx.target,
            artifact_root=ctx.mlflow_store.artifact_root,
        )
        ctx.mlflow.log_artifacts(run_id, str(folder), artifact_path=f"report/{run_month:%Y-%m}")
        stamp = int(ctx.clock().timestamp() * 1000)
        wape = inputs.accuracy["wape"].dropna()
        metrics = {
            "monitor/series_forecast": float(inputs.series_forecast),
            "monitor/alerts": float(len(inputs.alerts)),
            "monitor/segments_retrained": float(len(inputs.new_champions)),
        }
        if not wape.empty:
            metrics["monitor/median_wape_h1"] = float(wape.median())
        if inputs.job_cost is not None:
            metrics["monitor/estimated_cost"] = float(inputs.job_cost)
        ctx.mlflow.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()])
        ctx.mlflow.set_tag(run_id, "run_month", run_month.strftime("%Y-%m"))
        if cfg.dataset is not None:  # datasets share the experiment: tell their runs apart
            ctx.mlflow.set_tag(run_id, DATASET_TAG, cfg.dataset.name)
            name = f"monthly job run {cfg.job_run_id} ({cfg.dataset.name})"
            ctx.mlflow.update_run(run_id, name=name)
    except Exception as exc:  # the report on disk stands; MLflow is a copy
        log.warning("monitor: report not logged to MLflow experiment %s: %s", cfg.experiment, exc)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The monitor task's own options (bundle variables)."""
    parser.add_argument(
        "--accuracy-alert-wape",
        type=float,
        default=0.15,
        help="alert when a segment's recent one-month-ahead WAPE exceeds this",
    )
    parser.add_argument(
        "--accuracy-window-months",
        type=int,
        default=3,
        help="newest evaluated months pooled for the alert",
    )
    parser.add_argument(
        "--fail-on-alert",
        default="false",
        help="true: an accuracy alert fails the task (bundle var fail_on_alert)",
    )
    parser.add_argument(
        "--run-month",
        default=None,
        help="YYYY-MM to report (default: the newest run month of the forecasts)",
    )
    parser.add_argument(
        "--report-driver-max-rows",
        type=int,
        default=REPORT_DRIVER_MAX_ROWS,
        help="up to this many forecast rows the report's totals come from one collect, "
        "above it from Spark aggregates (0: always on Spark)",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="months each forecast should cover (bundle var horizon); segments whose "
        "champion forecasts another number are named in the report (omit: not checked)",
    )
    add_model_prefix_option(parser)
    add_approval_wait_option(parser)
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (bundle variable `dataset`): how quarantined "
        "rows name their series and month, to count those corrected since",
    )
    parser.add_argument(
        "--compute-cost-per-hour",
        type=float,
        default=1.0,
        help="what one hour of the job's compute costs (bundle var compute_cost_per_hour); "
        "the run's task times at this price are split over the models",
    )
    parser.add_argument(
        "--upstream-state",
        action="append",
        default=[],
        metavar="TASK=STATE",
        help="an upstream task's result state ({{tasks.<task>.result_state}}); monitor fails "
        "at its end unless it is success or excluded (repeatable)",
    )
    parser.add_argument(
        "--quality-monitor-assets-dir",
        default=None,
        help="Databricks: workspace folder of the forecast table's Lakehouse monitor "
        "dashboard; the monitor is created there if missing (omit: not checked)",
    )
    parser.add_argument(
        "--quality-monitor-pause-status",
        default="PAUSED",
        help="PAUSED or UNPAUSED: the monitor's schedule (bundle var quality_monitor_pause_status)",
    )
    parser.add_argument(
        "--alert-email",
        action="append",
        default=[],
        help="notified when a monitor refresh fails (bundle var alert_email; repeatable)",
    )


def add_approval_wait_option(parser: argparse.ArgumentParser) -> None:
    """``--approval-wait-months`` (bundle variable ``approval_wait_months``), as monitor and
    the report command take it: the report marks the versions awaiting approval that
    check_drift retrains next month, or should have retrained."""
    parser.add_argument(
        "--approval-wait-months",
        type=int,
        default=3,
        help="months a challenger awaiting approval waits before check_drift retrains its "
        "segment (bundle var approval_wait_months); the report marks those due",
    )


def make_config(args: argparse.Namespace) -> MonitorConfig:
    """Typed config from the parsed options.

    Raises:
        ValueError: ``--fail-on-alert`` is not true or false.
    """
    flag = str(args.fail_on_alert).strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"--fail-on-alert {args.fail_on_alert!r}: say true or false")
    return MonitorConfig(
        alert_wape=args.accuracy_alert_wape,
        window_months=args.accuracy_window_months,
        fail_on_alert=flag in ("true", "1", "yes"),
        run_month=parse_month(args.run_month) if args.run_month else None,
        job_run_id=args.job_run_id,
        experiment=args.experiment,
        driver_max_rows=args.report_driver_max_rows,
        cost_per_hour=args.compute_cost_per_hour,
        monitor_assets_dir=args.quality_monitor_assets_dir,
        alert_emails=tuple(e.strip() for e in args.alert_email if e.strip()),
        monitor_pause_status=str(args.quality_monitor_pause_status).strip().upper(),
        upstream_states=upstream_states(args.upstream_state),
        horizon=args.horizon,
        model_prefix=args.model_prefix,
        approval_wait_months=args.approval_wait_months,
        dataset=load_dataset_config(args.dataset),
    )


def upstream_states(pairs: Sequence[str]) -> dict[str, str]:
    """``{task: state}`` from ``TASK=STATE`` options.

    Raises:
        ValueError: an option without ``=`` or without a task.
    """
    states = {}
    for pair in pairs:
        task, sep, state = pair.partition("=")
        if not sep or not task.strip():
            raise ValueError(f"--upstream-state {pair!r}: write TASK=STATE, e.g. train=success")
        states[task.strip()] = state.strip().lower()
    return states


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-monitor``."""
    run_task(
        TASK_KEY,
        "Score past forecasts against actuals, alert on accuracy, and write the run report.",
        add_arguments,
        make_config,
        run,
        argv,
    )
