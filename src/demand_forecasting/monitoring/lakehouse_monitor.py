"""The Lakehouse monitor of the gold forecast table: created by the monitor task if missing.

An inference-log profile beside the job's own checks (PSI drift in check_drift, accuracy in
monitor): prediction ``forecast``, model identity ``model_id`` (``<model>/<version>``), sliced
by segment and horizon, aggregated per month of ``run_timestamp`` (the run month the forecast
was made in). Actuals arrive later and are scored by the monitor task into forecast_accuracy,
so the profile has no label column. Its schedule (07:00 UTC on the 3rd, an hour after the
monthly job's) is paused except where ``quality_monitor_pause_status`` says UNPAUSED (prod).

Why the task and not the bundle: a monitor can only be created on a table that exists, and
gold_forecasts is created by the score task's first run. As a ``quality_monitors`` resource,
the first deploy into a new schema (CD's first deploy of test, every developer's first
``bundle deploy -t dev``) failed on it, so the job that creates the table was never deployed.
The task runs after score, so the table is there. An existing monitor is left as it is.

Databricks only, through databricks-sdk's ``quality_monitors`` API (``/api/2.1/unity-catalog/
tables/{table}/monitor``, the API behind the bundle resource), using the SDK that Databricks
runtimes and serverless environments ship; the wheel does not install it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databricks.sdk.service.catalog import QualityMonitorsAPI

log = logging.getLogger(__name__)

#: The profile's settings (what resources/monitoring.yml declared before).
PREDICTION_COLUMN = "forecast"
MODEL_ID_COLUMN = "model_id"
TIMESTAMP_COLUMN = "run_timestamp"
GRANULARITIES = ("1 month",)
SLICING_EXPRS = ("segment", "horizon")
SCHEDULE_CRON = "0 0 7 3 * ?"
SCHEDULE_TIMEZONE = "UTC"
PAUSE_STATUSES = ("PAUSED", "UNPAUSED")


def check_pause_status(value: str) -> None:
    """Raise ValueError naming the option and the variable unless ``value`` is a status."""
    if value not in PAUSE_STATUSES:
        raise ValueError(
            f"--quality-monitor-pause-status={value!r}: say PAUSED or UNPAUSED "
            "(bundle variable quality_monitor_pause_status)"
        )


class LakehouseMonitorError(RuntimeError):
    """The monitor could not be looked up or created; the message says what to do."""


@dataclass(frozen=True)
class ForecastMonitorSpec:
    """Where the forecast table's monitor goes and who hears of its failures.

    Attributes:
        table_name: ``catalog.schema.gold_forecasts``.
        output_schema_name: ``catalog.schema`` for the metric tables.
        assets_dir: workspace folder of the monitor's dashboard (in the bundle folder).
        alert_emails: notified when a refresh fails.
        pause_status: ``PAUSED`` or ``UNPAUSED`` (the schedule).

    Raises:
        ValueError: a pause status other than PAUSED or UNPAUSED, or no assets folder.
    """

    table_name: str
    output_schema_name: str
    assets_dir: str
    alert_emails: tuple[str, ...] = ()
    pause_status: str = "PAUSED"

    def __post_init__(self) -> None:
        check_pause_status(self.pause_status)
        if not self.assets_dir.startswith("/"):
            raise ValueError(
                f"--quality-monitor-assets-dir={self.assets_dir!r}: must be an absolute "
                "workspace folder (the job passes ${workspace.root_path}/monitoring/...)"
            )


def ensure_forecast_monitor(monitors: QualityMonitorsAPI, spec: ForecastMonitorSpec) -> bool:
    """Create the forecast table's monitor unless it exists.

    Args:
        monitors: ``WorkspaceClient().quality_monitors``.
        spec: the monitor to have.

    Returns:
        True when this call created it; False when it existed (it is left unchanged).

    Raises:
        LakehouseMonitorError: the lookup or the creation failed (permissions, a missing
            table); the message names the table and what to check.
    """
    from databricks.sdk.errors import DatabricksError, NotFound
    from databricks.sdk.service.catalog import (
        MonitorCronSchedule,
        MonitorCronSchedulePauseStatus,
        MonitorDestination,
        MonitorInferenceLog,
        MonitorInferenceLogProblemType,
        MonitorNotifications,
    )

    try:
        monitors.get(table_name=spec.table_name)
        log.info("Lakehouse monitor of %s exists; left as it is", spec.table_name)
        return False
    except NotFound:
        pass
    except DatabricksError as exc:
        raise LakehouseMonitorError(_advice(spec, "look up", exc)) from exc
    notifications = (
        MonitorNotifications(on_failure=MonitorDestination(email_addresses=list(spec.alert_emails)))
        if spec.alert_emails
        else None
    )
    try:
        monitors.create(
            table_name=spec.table_name,
            output_schema_name=spec.output_schema_name,
            assets_dir=spec.assets_dir,
            inference_log=MonitorInferenceLog(
                problem_type=MonitorInferenceLogProblemType.PROBLEM_TYPE_REGRESSION,
                prediction_col=PREDICTION_COLUMN,
                model_id_col=MODEL_ID_COLUMN,
                timestamp_col=TIMESTAMP_COLUMN,
                granularities=list(GRANULARITIES),
            ),
            slicing_exprs=list(SLICING_EXPRS),
            schedule=MonitorCronSchedule(
                quartz_cron_expression=SCHEDULE_CRON,
                timezone_id=SCHEDULE_TIMEZONE,
                pause_status=MonitorCronSchedulePauseStatus(spec.pause_status),
            ),
            notifications=notifications,
        )
    except DatabricksError as exc:
        raise LakehouseMonitorError(_advice(spec, "create", exc)) from exc
    log.info(
        "Lakehouse monitor of %s created (metric tables in %s, dashboard in %s, schedule %s)",
        spec.table_name,
        spec.output_schema_name,
        spec.assets_dir,
        spec.pause_status,
    )
    return True


def _advice(spec: ForecastMonitorSpec, action: str, exc: Exception) -> str:
    return (
        f"could not {action} the Lakehouse monitor of {spec.table_name}: "
        f"{type(exc).__name__}: {exc}. The job's run-as identity must own the table (the "
        f"score task creates it) and may write {spec.assets_dir}; rerun the monitor task "
        "once that holds"
    )


def workspace_quality_monitors() -> QualityMonitorsAPI:
    """``quality_monitors`` of the workspace this Databricks job runs in (runtime auth).

    Only ever called on Databricks: elsewhere a client would look for a host and credentials.
    """
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient().quality_monitors
