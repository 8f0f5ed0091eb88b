"""The versions each month's run report listed as awaiting approval, for ``reported:YYYY-MM``.

The report's "Awaiting approval" section lists the challengers an approver reviews. Naming
each of them pinned (``segments="a=7,b=3,..."``) is race-safe but grows with the estate: with
hundreds of segments waiting it is unusable, and the approve job's parameters must stay
under 10,000 bytes. ``segments="reported:2017-12"`` (locally ``approve --as-reported
2017-12``) names exactly the versions 2017-12's report listed, pinned: a version a later run
superseded is refused as a pinned one is (:func:`demand_forecasting.models.approve.approve`).

Why a table of its own (``approval_requests``): the list must outlive the job run and say
what the report *showed*. The job's hand-over table keeps 90 days and is keyed by job run,
not month; the audit table records the ``awaiting_approval`` marks, but not which of them
were still awaiting when the report was written (approvals and supersessions since). So
monitor, when it writes the report, writes the listed ``(segment, version)`` rows of the
run month here, replacing that month's rows: a rerun of the month rewrites the report and
its list together, so the newest report of a month is the one approved.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import parse_month
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame

log = logging.getLogger(__name__)

#: ``segments`` of the approve job (and an item of the ``approve`` command) that names a
#: month's reported list: ``reported:YYYY-MM``.
REPORTED_PREFIX = "reported:"
_REPORTED = re.compile(r"^reported:(\d{4}-\d{2})$")

SCHEMA = (
    "run_month date, segment string, version string, model string, "
    "reported_at timestamp, job_run_id string"
)


def reported_month(items: Sequence[str]) -> date | None:
    """The month of a ``reported:YYYY-MM`` selection, or None (``items`` name segments).

    Raises:
        ValueError: a ``reported:`` item is malformed, or is not the only item.
    """
    reported = [item for item in items if item.strip().lower().startswith(REPORTED_PREFIX)]
    if not reported:
        return None
    match = _REPORTED.match(reported[0].strip().lower())
    if match is None:
        raise ValueError(
            f"{reported[0]!r}: write {REPORTED_PREFIX}YYYY-MM, the month of the report whose "
            "'Awaiting approval' versions to approve (e.g. reported:2017-12)"
        )
    if len(items) > 1:
        raise ValueError(
            f"{reported[0]!r} approves a report's whole list: name it alone, or name the "
            "segments as segment=version instead"
        )
    return parse_month(match.group(1))


def record(
    ctx: RunContext,
    run_month: date,
    awaiting: pd.DataFrame,
    reported_at: datetime,
    job_run_id: str | None,
) -> None:
    """Replace ``run_month``'s rows with the versions the report lists (``awaiting``:
    ``segment``, ``version``, ``model``; the report's
    :func:`~demand_forecasting.monitoring.monitor.awaiting_approval`). Writes nothing when
    nothing awaits and the table does not exist yet (a target without ``require_approval``
    never creates it)."""
    table = ctx.table(names.APPROVAL_REQUESTS)
    if awaiting.empty and not ctx.tables.exists(table):
        return
    rows = [
        (run_month, str(row.segment), str(row.version), str(row.model), reported_at, job_run_id)
        for row in awaiting.itertuples(index=False)
    ]
    ctx.tables.write(
        rows_frame(ctx.spark, rows, SCHEMA).coalesce(1),
        table,
        mode="overwrite",
        replaceWhere=f"run_month = DATE'{run_month.isoformat()}'",
    )


def listed(ctx: RunContext, month: date) -> dict[str, str]:
    """``{segment: version}`` the report of ``month`` listed (empty: none, or no report)."""
    table = ctx.table(names.APPROVAL_REQUESTS)
    if not ctx.tables.exists(table):
        return {}
    rows = (
        ctx.tables.read(table)
        .where(F.col("run_month") == F.lit(month))
        .select("segment", "version")
        .collect()
    )
    return {str(r["segment"]): str(r["version"]) for r in sorted(rows)}


def months_listed(ctx: RunContext) -> list[date]:
    """The run months whose reports listed versions awaiting approval, oldest first."""
    table = ctx.table(names.APPROVAL_REQUESTS)
    if not ctx.tables.exists(table):
        return []
    return sorted(r[0] for r in ctx.tables.read(table).select("run_month").distinct().collect())


def reported(ctx: RunContext, month: date) -> dict[str, str]:
    """``{segment: version}`` the report of ``month`` listed as awaiting approval.

    Raises:
        LookupError: that report listed none (or monitor did not run that month); the
            message names the months whose reports listed some.
    """
    versions = listed(ctx, month)
    if versions:
        return versions
    others = months_listed(ctx)
    raise LookupError(
        f"nothing was approved: the report of {month:%Y-%m} listed no version awaiting "
        f"approval in {ctx.table(names.APPROVAL_REQUESTS)} (nothing awaited then, or the "
        "monthly job's monitor did not run that month); "
        + (
            "reports that listed some: " + ", ".join(f"{m:%Y-%m}" for m in others)
            if others
            else "no report has listed any yet"
        )
    )


def newer_report_hint(ctx: RunContext, month: date) -> str:
    """For a refusal of ``reported:<month>``: the newest report that listed versions, when
    it is a later one (it shows the versions now awaiting); empty otherwise."""
    newest = max(months_listed(ctx), default=None)
    if newest is None or newest <= month:
        return ""
    return (
        f". The report of {newest:%Y-%m} is newer: review its 'Awaiting approval' and approve "
        f"{REPORTED_PREFIX}{newest:%Y-%m}"
    )
