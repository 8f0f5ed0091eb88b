"""``demand-forecasting report``: write a run's report again, after the job has ended.

The monitor task writes the report as the job's last step, before its own telemetry row
exists; run this afterwards for the complete time-per-task table, or to report an earlier
run month. The cost per model is priced as monitor priced it for that job run. Reads the
same tables the monitor does and writes the same files.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import load_dataset_config, parse_month
from demand_forecasting.monitoring.monitor import (
    MonitorConfig,
    add_approval_wait_option,
    report_month,
)

if TYPE_CHECKING:
    from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``report`` sub-command's options."""
    parser.add_argument("--catalog", default="dev", help="catalog of the run's tables")
    parser.add_argument("--schema", default="demand_forecasting", help="schema of the tables")
    parser.add_argument("--target", default="dev", help="bundle target")
    parser.add_argument(
        "--run-month",
        type=parse_month,
        default=None,
        metavar="YYYY-MM",
        help="run month to report (default: the newest run month of the forecasts)",
    )
    parser.add_argument(
        "--job-run-id",
        default=None,
        help="job run whose task times and costs to show (default: the newest one, or with "
        "--run-month the newest one of that month)",
    )
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (the bundle's dataset): to count the "
        "quarantined rows corrected since",
    )
    parser.add_argument("--accuracy-alert-wape", type=float, default=0.15)
    parser.add_argument("--accuracy-window-months", type=int, default=3)
    parser.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="months each forecast should cover (the bundle's horizon); segments forecasting "
        "another number are named (default: not checked)",
    )
    add_approval_wait_option(parser)
    parser.add_argument(
        "--compute-cost-per-hour",
        type=float,
        default=None,
        help="price of an hour of the job's compute (default: the one monitor used for this "
        "job run, from the model cost table; else 1.0)",
    )


def job_run_of(ctx: RunContext, run_month: date | None) -> str | None:
    """The job run whose task times and costs the report shows.

    Without a run month: the newest job run in the telemetry. With one: the newest job run
    that monitor priced for that month (the model cost table records each job run's month);
    None when there is none, rather than another month's run.
    """
    telemetry = ctx.table(names.TELEMETRY)
    if not ctx.tables.exists(telemetry):
        return None
    runs = ctx.tables.read(telemetry).where(F.col("job_run_id").isNotNull())
    if run_month is not None:
        costs = ctx.table(names.MODEL_COSTS)
        of_month = (
            ctx.tables.read(costs).where(F.col("run_month") == F.lit(run_month))
            if ctx.tables.exists(costs)
            else None
        )
        if of_month is None:
            runs = runs.limit(0)
        else:
            runs = runs.join(of_month.select("job_run_id").distinct(), "job_run_id", "left_semi")
    newest = runs.orderBy(F.col("started_at").desc()).select("job_run_id").first()
    if newest is None and run_month is not None:
        log.info(
            "report: no job run of %s is recorded in %s; the report shows no task times or "
            "costs (pass --job-run-id to show a run's)",
            run_month.strftime("%Y-%m"),
            ctx.table(names.MODEL_COSTS),
        )
    return str(newest[0]) if newest is not None else None


def main(args: argparse.Namespace) -> int:
    """Write the report; return the exit code (1: nothing to report yet)."""
    from demand_forecasting.platform.context import build_context

    ctx = build_context(args.target, args.catalog, args.schema)
    job_run_id = args.job_run_id or job_run_of(ctx, args.run_month)
    cost_per_hour = args.compute_cost_per_hour
    costs = ctx.table(names.MODEL_COSTS)
    if cost_per_hour is None and job_run_id is not None and ctx.tables.exists(costs):
        used = (
            ctx.tables.read(costs)
            .where(F.col("job_run_id") == job_run_id)
            .select("cost_per_hour")
            .first()
        )
        cost_per_hour = used[0] if used else None
    cfg = MonitorConfig(
        alert_wape=args.accuracy_alert_wape,
        window_months=args.accuracy_window_months,
        run_month=args.run_month,
        job_run_id=job_run_id,
        cost_per_hour=1.0 if cost_per_hour is None else float(cost_per_hour),
        horizon=args.horizon,
        approval_wait_months=args.approval_wait_months,
        dataset=load_dataset_config(args.dataset),
    )
    try:
        path = report_month(ctx, cfg)
    except RuntimeError as exc:
        log.error("report: %s", exc)
        return 1
    log.info("report: %s", path)
    return 0
