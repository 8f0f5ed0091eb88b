"""A segment's history as a month x series matrix: the shape every forecaster works on.

Training, backtests and scoring all start from the same long frame ``(series_id, month, y)``
(``y`` missing where a month is a gap) and turn it into a :class:`Panel` here, so that the
three can never disagree about months, gaps or series order.

A dataset's planned covariates (price, promotion: ``planned`` in its config) come along as
more columns of that frame (their actual values) and, for the months after the history, as a
frame of plans; the panel holds each as a ``months x series`` matrix that may run past the
history's newest month (the plans, or in a backtest the actual values standing in for them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Columns of a history frame (one row per series and month).
HISTORY_COLUMNS = ("series_id", "month", "y")
#: Column of a model's input marking the rows that carry plans of the planned covariates
#: (months after the history), not history (:mod:`demand_forecasting.models.pyfunc`).
PLAN_FLAG = "is_plan"
#: A run of at least this many zero months ends a series' life so far: its next non-zero
#: value is a new start (a product relaunched, or launched after a year or more of zeros).
DORMANT_MONTHS = 12


class HistoryError(ValueError):
    """A history frame breaks the contract of :func:`panel_from_history`."""


@dataclass(frozen=True)
class Panel:
    """Consecutive months x series, with the target and its log.

    Attributes:
        months: consecutive first-of-month timestamps, oldest first.
        series: series ids, in column order.
        values: ``len(months) x len(series)`` target, NaN where a month is missing.
        covariates: planned covariate name -> ``rows x len(series)`` values from
            ``months[0]`` on; ``rows >= len(months)``, the rows past the newest month are the
            plans (NaN where a plan is missing).
    """

    months: pd.DatetimeIndex
    series: tuple[str, ...]
    values: np.ndarray
    covariates: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def log_values(self) -> np.ndarray:
        """``log1p`` of the target (negative values count as 0)."""
        return np.log1p(np.clip(self.values, 0.0, None))

    @property
    def end(self) -> pd.Timestamp:
        """The newest month."""
        return pd.Timestamp(self.months[-1])

    def last_observed(self) -> np.ndarray:
        """Per series, the row index of its newest observed month (-1: never observed)."""
        observed = ~np.isnan(self.values)
        flipped = np.argmax(observed[::-1], axis=0)
        last = len(self.months) - 1 - flipped
        return np.where(observed.any(axis=0), last, -1)

    def start_rows(self) -> np.ndarray:
        """Per series, the row index of the month it started (-1: never observed).

        Many sources write zeros, not gaps, before a product is launched (PBS does), so a
        series' first observed month is not its start: it starts at its first non-zero
        value, and again at the first non-zero value after a run of at least
        :data:`DORMANT_MONTHS` zero months (a relaunch). A series that was never non-zero
        starts at its first observed month (nothing tells a launch apart there); so does
        one whose first value is non-zero and that never had such a run (every aus_retail
        series). Gaps neither count as zeros nor break a run.
        """
        return np.array([_start_row(self.values[:, s]) for s in range(len(self.series))])

    def not_started(self) -> np.ndarray:
        """``months x series``: True at the observed months before a series' start (its
        leading zeros, or the zeros and stray values before a relaunch; see
        :meth:`start_rows`). A forecaster must not read them as the series' level or season.
        """
        rows = np.arange(len(self.months))[:, None]
        return ~np.isnan(self.values) & (rows < self.start_rows()[None, :])

    def until(self, month: pd.Timestamp) -> Panel:
        """The panel cut after ``month`` (what a forecaster standing at ``month`` knows).

        The covariates are kept whole: their values after ``month`` are what a plan made
        at ``month`` would have said (a backtest scores with the actual values as the plan,
        ex post); the features read them only at the target month.
        """
        keep = self.months <= month
        return Panel(self.months[keep], self.series, self.values[keep], self.covariates)

    def plan_rows(self) -> int:
        """How many months past the newest month every covariate covers (0 without any)."""
        if not self.covariates:
            return 0
        return min(len(v) for v in self.covariates.values()) - len(self.months)

    def with_unknown_plans(self, horizon: int) -> Panel:
        """The panel with its covariates run ``horizon`` months past the newest month, NaN
        where no value is known: a forecast that knowingly has no plans (the training's own
        forecast for its plot) gets the stand-ins of :mod:`.covariates` for all of them."""
        rows = len(self.months) + horizon
        extended = {}
        for name, values in self.covariates.items():
            grown = np.full((max(rows, len(values)), len(self.series)), np.nan)
            grown[: len(values)] = values
            extended[name] = grown
        return Panel(self.months, self.series, self.values, extended)


def _start_row(values: np.ndarray) -> int:
    """:meth:`Panel.start_rows` of one series' column of values."""
    observed = np.flatnonzero(~np.isnan(values))
    if len(observed) == 0:
        return -1
    selling = np.flatnonzero(values[observed] > 0)  # positions among the observed months
    if len(selling) == 0:
        return int(observed[0])
    zeros_before = np.diff(selling, prepend=-1) - 1
    relaunches = np.flatnonzero(zeros_before[1:] >= DORMANT_MONTHS) + 1
    first = selling[relaunches[-1]] if len(relaunches) else selling[0]
    return int(observed[first])


def panel_from_history(
    history: pd.DataFrame,
    covariates: Sequence[str] = (),
    plans: pd.DataFrame | None = None,
) -> Panel:
    """Pivot a long history frame into a :class:`Panel` with every month present.

    Args:
        history: columns ``series_id``, ``month`` (first of month), ``y`` (float, NaN for a
            gap), and each of ``covariates``; one row per series and month.
        covariates: the planned covariates to carry (their actual values in ``history``).
        plans: ``series_id, month`` and each of ``covariates`` for months after the
            history's newest (rows of series not in ``history`` are left out).

    Raises:
        HistoryError: a column is missing, the frame is empty, a month is not the first of
            its month, a (series, month) appears twice, or a plan's month is not after the
            history.
    """
    needed = [*HISTORY_COLUMNS, *covariates]
    missing = [c for c in needed if c not in history.columns]
    if missing:
        raise HistoryError(
            f"history frame lacks column(s) {missing}; it needs {needed} "
            "(select them from the gold feature table)"
        )
    if history.empty:
        raise HistoryError("history frame is empty: a segment needs at least one series month")
    months = pd.to_datetime(history["month"])
    if not (months.dt.day == 1).all():
        bad = months[months.dt.day != 1].iloc[0]
        raise HistoryError(
            f"month {bad.date()} is not the first of its month; the history must be on the "
            "month grain (month = first day of the month)"
        )
    frame = pd.DataFrame(
        {
            "series_id": history["series_id"].astype(str).to_numpy(),
            "month": months.to_numpy(),
            "y": pd.to_numeric(history["y"], errors="coerce").astype(float).to_numpy(),
        }
    )
    duplicated = frame.duplicated(["series_id", "month"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise HistoryError(
            f"series {row['series_id']!r} has month {pd.Timestamp(row['month']).date()} "
            "twice; the history must have one row per series and month"
        )
    wide = frame.pivot(index="month", columns="series_id", values="y")
    full = pd.date_range(wide.index.min(), wide.index.max(), freq="MS")
    wide = wide.reindex(full).sort_index(axis=1)
    series = tuple(str(s) for s in wide.columns)
    return Panel(
        months=pd.DatetimeIndex(full),
        series=series,
        values=wide.to_numpy(dtype=float),
        covariates=_covariate_matrices(history, covariates, plans, full, series),
    )


def _covariate_matrices(
    history: pd.DataFrame,
    covariates: Sequence[str],
    plans: pd.DataFrame | None,
    months: pd.DatetimeIndex,
    series: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """Each covariate as ``rows x series``: the history's months, then the plans' months."""
    if not covariates:
        return {}
    long = pd.DataFrame(
        {
            "series_id": history["series_id"].astype(str).to_numpy(),
            "month": pd.to_datetime(history["month"]).to_numpy(),
            **{c: pd.to_numeric(history[c], errors="coerce").astype(float) for c in covariates},
        }
    )
    if plans is not None and len(plans):
        future = pd.DataFrame(
            {
                "series_id": plans["series_id"].astype(str).to_numpy(),
                "month": pd.to_datetime(plans["month"]).to_numpy(),
                **{c: pd.to_numeric(plans[c], errors="coerce").astype(float) for c in covariates},
            }
        )
        early = future[future["month"] <= months[-1]]
        if len(early):
            raise HistoryError(
                f"plan for series {early['series_id'].iloc[0]!r}, month "
                f"{pd.Timestamp(early['month'].iloc[0]).date()}, is not after the history's "
                f"newest month {months[-1].date()}: plans are for the months forecast"
            )
        future = future.drop_duplicates(["series_id", "month"], keep="last")
        long = pd.concat([long, future[future["series_id"].isin(series)]], ignore_index=True)
    end = max(months[-1], long["month"].max())
    rows = pd.date_range(months[0], end, freq="MS")
    return {
        c: long.pivot(index="month", columns="series_id", values=c)
        .reindex(index=rows, columns=list(series))
        .to_numpy(dtype=float)
        for c in covariates
    }
