"""The drift table's rows: one per run month, segment and feature (pure, but for the read).

A segment that was not measured (no champion, or no readable reference) gets one row with
no feature and no PSI, so that every segment's decision of the month is in the table. Each row
names the job run whose check_drift took its decision and when (``decided_by_job_run``,
``decided_at``): a rerun of the month keeps the rows of the segments it does not decide again
(already retrained, or refused, this month), so the report can say whose decision it shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.monitoring.champions import Champion
from demand_forecasting.platform.context import RunContext

DRIFT_SCHEMA = (
    "run_month date, segment string, feature string, psi double, psi_threshold double, "
    "psi_critical double, breach boolean, n_reference long, n_current long, "
    "bin_edges array<double>, reference_shares array<double>, current_shares array<double>, "
    "decision string, champion_model string, champion_version string, "
    "reference_table string, reference_table_version long, reference_start date, "
    "reference_end date, current_table_version long, current_start date, current_end date, "
    "decided_by_job_run string, decided_at timestamp"
)
#: Columns a drift table written before they existed lacks (read back as null).
PROVENANCE_COLUMNS = ("decided_by_job_run", "decided_at")
DRIFT_COLUMNS = tuple(column.split()[0] for column in DRIFT_SCHEMA.split(", "))


@dataclass(frozen=True)
class Reference:
    """Where a segment's reference window came from."""

    table: str
    version: int
    start: date
    end: date


@dataclass(frozen=True)
class RowContext:
    """What every drift row of a run shares."""

    run_month: date
    threshold: float
    current_version: int
    current_start: date
    champions: dict[str, Champion]
    references: dict[str, Reference]
    #: The job run deciding (None: check_drift run by hand) and when.
    job_run_id: str | None = None
    decided_at: datetime | None = None


def segment_rows(
    segment: str, decision: str, psi: pd.DataFrame, context: RowContext
) -> list[tuple[Any, ...]]:
    """The drift table rows of one segment (one per feature; one without PSI if unmeasured)."""
    champion = context.champions.get(segment)
    reference = context.references.get(segment)
    shared = {
        "run_month": context.run_month,
        "segment": segment,
        "psi_threshold": context.threshold,
        "decision": decision,
        "champion_model": champion.model_name if champion else None,
        "champion_version": champion.version if champion else None,
        "reference_table": reference.table if reference else None,
        "reference_table_version": reference.version if reference else None,
        "reference_start": reference.start if reference else None,
        "reference_end": reference.end if reference else None,
        "current_table_version": context.current_version,
        "current_start": context.current_start,
        "current_end": context.run_month,
        "decided_by_job_run": context.job_run_id,
        "decided_at": context.decided_at,
    }
    measured = psi[psi["segment"] == segment]
    if measured.empty:
        return [tuple(shared.get(c) for c in DRIFT_COLUMNS)]
    rows = []
    for record in measured.to_dict("records"):
        value = {
            **shared,
            **{k: record[k] for k in ("feature", "psi_critical", "n_reference", "n_current")},
        }
        value["psi"] = None if pd.isna(record["psi"]) else float(record["psi"])
        value["breach"] = bool(record["breach"])
        for key in ("bin_edges", "reference_shares", "current_shares"):
            value[key] = [float(v) for v in record[key]]
        value["n_reference"], value["n_current"] = (
            int(value["n_reference"]),
            int(value["n_current"]),
        )
        rows.append(tuple(value.get(c) for c in DRIFT_COLUMNS))
    return rows


def existing_rows(ctx: RunContext, run_month: date, segments: list[str]) -> dict[str, list[Any]]:
    """The drift rows already written for ``run_month`` of ``segments`` (a rerun keeps them)."""
    name = ctx.table(names.DRIFT)
    if not segments or not ctx.tables.exists(name):
        return {}
    table = ctx.tables.read(name)
    rows = (
        table.where((F.col("run_month") == F.lit(run_month)) & F.col("segment").isin(segments))
        .select(*[_column(table.columns, c) for c in DRIFT_COLUMNS])
        .collect()
    )
    found: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        found[row["segment"]].append(row)
    return dict(found)


def _column(present: list[str], name: str) -> Column:
    """``name`` from a table with columns ``present``; null when an older table lacks it."""
    if name in present or name not in PROVENANCE_COLUMNS:
        return F.col(name)
    kind = dict(c.split() for c in DRIFT_SCHEMA.split(", "))[name]
    return F.lit(None).cast(kind).alias(name)


def existing_records(existing: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    """Rows read back from the drift table, as tuples in table order."""
    return [tuple(row) for rows in existing.values() for row in rows]
