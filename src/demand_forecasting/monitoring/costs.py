"""Estimated compute cost of each model (segment) in one job run.

A job's compute is billed for as long as its tasks run. Monitor estimates each task's cost
as its duration times ``compute_cost_per_hour`` (a bundle variable: what one hour of the job's
compute costs, DBUs times their price plus the VMs) and splits it over the segment models:

- a task that measured each segment's own work (train: fit and logging; validate_models: the
  backtest; score: loading the champion and forecasting; see
  :func:`demand_forecasting.monitoring.telemetry.record_segment_seconds`) splits its cost in
  proportion to those seconds (basis ``measured``);
- a task that works on every series at once (ingest, validate_data, build_features,
  check_drift, deploy) splits its cost in proportion to the series each segment forecast this
  run (basis ``series``);
- such a task in a run that forecast no series (a ``require_approval`` target before its first
  approval: no segment has a champion) has nothing to split by: its cost is one row with no
  segment (basis ``unattributed``), so that the split still adds up to the job's cost.

Every attempt of a task counts (a failed attempt was billed too). Monitor itself is left out:
it is still running when the figures are computed, and leaving it out gives the report the
same figures whenever it is drawn. The per-model costs plus the unattributed ones add up to
the estimated cost of the job run's other tasks. It is an estimate: the bill also holds
cluster start-up and idle time. On Databricks the billed figures are in
``system.billing.usage`` by job run (``docs/deployment.md`` has the query).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

MEASURED, SERIES, UNATTRIBUTED = "measured", "series", "unattributed"
#: Tasks whose cost is not split: monitor runs while the split is made.
EXCLUDED_TASKS = frozenset({"monitor"})
#: One row per segment and task of :func:`allocate`.
ALLOCATION_COLUMNS = ["segment", "task", "basis", "share", "task_seconds", "cost"]
#: Spark schema of the model cost table (the allocation plus the job run it belongs to).
MODEL_COSTS_SCHEMA = (
    "job_run_id string, run_month date, segment string, task string, basis string, "
    "share double, task_seconds double, cost double, cost_per_hour double"
)


def _measured(value: object) -> dict[str, float]:
    """A telemetry row's ``segment_seconds`` as a dict (Spark gives a map as a dict or a
    list of pairs; a missing value is empty)."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [tuple(pair) for pair in value]
    else:
        return {}
    return {str(k): float(v) for k, v in items if v is not None and float(v) > 0}


def allocate(
    telemetry: pd.DataFrame, series_per_segment: Mapping[str, int], cost_per_hour: float
) -> pd.DataFrame:
    """Each task's estimated cost split over the segment models (pure).

    Args:
        telemetry: the job run's task attempts: ``task, duration_s`` and optionally
            ``segment_seconds`` (each segment's own seconds in that attempt).
        series_per_segment: the series each segment forecast this run (the basis of the tasks
            that measured no segment; segments with none get none of that cost).
        cost_per_hour: what one hour of the job's compute costs.

    Returns:
        :data:`ALLOCATION_COLUMNS`, one row per segment and task (attempts summed); ``share``
        is the segment's fraction of the task. A task with no measured segment and no series
        to split by is one row with segment None and basis ``unattributed`` (share 1): the
        rows' costs always add up to :func:`job_cost`.

    Raises:
        ValueError: a negative ``cost_per_hour``.
    """
    if cost_per_hour < 0:
        raise ValueError(f"compute_cost_per_hour={cost_per_hour}: must be >= 0")
    series = {str(s): float(n) for s, n in series_per_segment.items() if n and n > 0}
    series_total = sum(series.values())
    rows = []
    for task, attempts in _attempts(telemetry).groupby("task", sort=False):
        seconds = float(attempts["duration_s"].fillna(0.0).sum())
        measured: dict[str, float] = {}
        if "segment_seconds" in attempts:
            for value in attempts["segment_seconds"]:
                for segment, work in _measured(value).items():
                    measured[segment] = measured.get(segment, 0.0) + work
        weights: list[tuple[str | None, float]]
        if measured:
            basis, weights, total = MEASURED, sorted(measured.items()), sum(measured.values())
        elif series_total > 0:
            basis, weights, total = SERIES, sorted(series.items()), series_total
        else:
            basis, weights, total = UNATTRIBUTED, [(None, 1.0)], 1.0
        for model, weight in weights:
            share = weight / total
            rows.append(
                {
                    "segment": model,
                    "task": str(task),
                    "basis": basis,
                    "share": share,
                    "task_seconds": seconds,
                    "cost": seconds / 3600.0 * cost_per_hour * share,
                }
            )
    return pd.DataFrame(rows, columns=ALLOCATION_COLUMNS)


def job_cost(telemetry: pd.DataFrame, cost_per_hour: float) -> float:
    """The estimated cost of the job run's tasks (every attempt, monitor left out)."""
    attempts = _attempts(telemetry)
    return float(attempts["duration_s"].fillna(0.0).sum()) / 3600.0 * cost_per_hour


def unattributed(allocation: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`allocate` no model carries (basis ``unattributed``)."""
    return allocation[allocation["basis"] == UNATTRIBUTED]


def per_model(allocation: pd.DataFrame) -> pd.DataFrame:
    """One row per segment, most expensive first: ``segment, cost, measured, shared,
    job_share`` (``measured``: the tasks that measured the segment's own work; ``shared``:
    its series' part of the others; ``job_share``: its fraction of the job run's cost, the
    :func:`unattributed` part included). The unattributed rows are no model's: left out."""
    columns = ["segment", "cost", "measured", "shared", "job_share"]
    models = allocation[allocation["basis"] != UNATTRIBUTED]
    if models.empty:
        return pd.DataFrame(columns=columns)
    by_basis = models.pivot_table(
        index="segment", columns="basis", values="cost", aggfunc="sum", fill_value=0.0
    )
    out = pd.DataFrame(
        {
            "measured": by_basis.get(MEASURED, 0.0),
            "shared": by_basis.get(SERIES, 0.0),
        }
    )
    out["cost"] = out["measured"] + out["shared"]
    total = float(allocation["cost"].sum())
    out["job_share"] = out["cost"] / total if total > 0 else 0.0
    out = out.reset_index()  # the pivot's index is the segment
    return out.sort_values(["cost", "segment"], ascending=[False, True], ignore_index=True)[columns]


def _attempts(telemetry: pd.DataFrame) -> pd.DataFrame:
    if telemetry.empty or "task" not in telemetry:
        return pd.DataFrame(columns=["task", "duration_s", "segment_seconds"])
    return telemetry[~telemetry["task"].isin(EXCLUDED_TASKS)]
