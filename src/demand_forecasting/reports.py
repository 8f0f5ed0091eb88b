"""Views of a run for people: what the notebooks in ``notebooks/`` show, as package functions.

The notebooks only call these, so that a report looks the same in a Databricks notebook and
on a laptop, and so that what it shows is tested code. Readers take a
:class:`~demand_forecasting.platform.context.RunContext` and return pandas frames (small,
display-ready); :func:`series_figure` is pure (pandas in, matplotlib figure out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from demand_forecasting import names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from demand_forecasting.platform.context import RunContext

#: The tables a run writes, in pipeline order (logical names from :mod:`names`).
RUN_TABLES = (
    names.BRONZE,
    names.QUARANTINE,
    names.VALIDATED,
    names.SILVER,
    names.FEATURES,
    names.DRIFT,
    names.EVALUATIONS,
    names.AUDIT,
    names.APPROVAL_REQUESTS,
    names.FORECASTS,
    names.ACCURACY,
    names.TELEMETRY,
    names.MODEL_COSTS,
)
#: Keys of every per-series, per-month table (silver, features, forecasts).
SERIES_KEY = "series_id"
MONTH = "month"
ACTUAL = "y"


def table_overview(ctx: RunContext, tables: Sequence[str] = RUN_TABLES) -> pd.DataFrame:
    """One row per table of the run: its full name, whether it exists, version and rows.

    Args:
        ctx: the run context (its catalog and schema say which tables).
        tables: logical table names (default: every table a monthly run writes).
    """
    rows = []
    for name in tables:
        exists = ctx.tables.exists(ctx.table(name))
        rows.append(
            {
                "table": name,
                "full_name": ctx.table(name),
                "exists": exists,
                "version": ctx.tables.version(ctx.table(name)) if exists else None,
                "rows": ctx.tables.read(ctx.table(name)).count() if exists else None,
            }
        )
    return pd.DataFrame(rows, columns=["table", "full_name", "exists", "version", "rows"])


def latest_rows(
    ctx: RunContext, table: str, order_by: str | None = None, limit: int = 50
) -> pd.DataFrame:
    """The newest ``limit`` rows of a run table (ordered by ``order_by`` if it has it).

    Returns an empty frame when the table does not exist yet (the step has not run).
    """
    full_name = ctx.table(table)
    if not ctx.tables.exists(full_name):
        return pd.DataFrame()
    frame = ctx.tables.read(full_name)
    if order_by is not None and order_by in frame.columns:
        frame = frame.orderBy(frame[order_by].desc())
    return frame.limit(limit).toPandas()


def series_history(ctx: RunContext, series_id: str) -> pd.DataFrame:
    """Silver's months of one series (``month``, ``y``), oldest first."""
    full_name = ctx.table(names.SILVER)
    if not ctx.tables.exists(full_name):
        return pd.DataFrame(columns=[MONTH, ACTUAL])
    frame = ctx.tables.read(full_name).where(f"{SERIES_KEY} = '{_quoted(series_id)}'")
    return frame.select(MONTH, ACTUAL).orderBy(MONTH).toPandas()


def series_forecasts(ctx: RunContext, series_id: str) -> pd.DataFrame:
    """The forecast table's rows for one series (every numeric column), oldest first."""
    full_name = ctx.table(names.FORECASTS)
    if not ctx.tables.exists(full_name):
        return pd.DataFrame(columns=[MONTH])
    frame = ctx.tables.read(full_name).where(f"{SERIES_KEY} = '{_quoted(series_id)}'")
    return frame.orderBy(MONTH).toPandas()


def series_figure(
    history: pd.DataFrame, forecasts: pd.DataFrame | None = None, title: str = ""
) -> Figure:
    """Actuals of one series and, if given, every numeric forecast column, over months.

    Args:
        history: ``month`` and ``y`` (from :func:`series_history`).
        forecasts: ``month`` and numeric columns (e.g. the forecast and its interval);
            non-numeric columns are ignored.
        title: the figure title (e.g. the series id).

    Raises:
        ValueError: ``history`` lacks ``month`` or ``y``.
    """
    from matplotlib.figure import Figure

    missing = {MONTH, ACTUAL} - set(history.columns)
    if missing:
        raise ValueError(f"history needs columns {sorted(missing)}; got {list(history.columns)}")
    figure = Figure(figsize=(10, 4))
    axes = figure.add_subplot()
    axes.plot(pd.to_datetime(history[MONTH]), history[ACTUAL], label="actual", color="black")
    if forecasts is not None and MONTH in forecasts.columns and not forecasts.empty:
        months = pd.to_datetime(forecasts[MONTH])
        for column in forecasts.select_dtypes("number").columns:
            axes.plot(months, forecasts[column], label=column, linestyle="--")
    axes.set_title(title)
    axes.set_xlabel(MONTH)
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def _quoted(value: str) -> str:
    return value.replace("'", "''")
