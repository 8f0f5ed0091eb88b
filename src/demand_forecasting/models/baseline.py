"""The seasonal-naive baseline: each month forecast by the same calendar month a year before.

Every model must beat it (validation gate) and every report shows it beside the models.
A year before a series started (its zeros before a launch, see
:meth:`~demand_forecasting.models.panel.Panel.start_rows`) says nothing about it: there the
series' newest value stands in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_forecasting.models.panel import Panel


def source_rows(panel: Panel, horizons: np.ndarray) -> np.ndarray:
    """``len(horizons) x series``: the row each seasonal-naive forecast copies.

    The same calendar month of the newest year before the target month; the newest month
    where that one is before the series started. -1 where it is before the panel's start.
    """
    newest = len(panel.months) - 1
    source = newest + horizons - 12 * np.ceil(horizons / 12).astype(int)
    rows = np.repeat(np.maximum(source, -1)[:, None], len(panel.series), axis=1)
    before_start = np.take_along_axis(panel.not_started(), np.maximum(rows, 0), axis=0)
    return np.where((rows >= 0) & before_start, newest, rows)


def values_at(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows[i, s], s]`` for a :func:`source_rows` matrix (NaN where a row is -1)."""
    taken = np.take_along_axis(values, np.maximum(rows, 0), axis=0)
    return np.where(rows >= 0, taken, np.nan)


def seasonal_naive(panel: Panel, horizon: int) -> pd.DataFrame:
    """Seasonal-naive forecasts of h = 1..``horizon`` from the panel's newest month.

    Only series observed in the newest month are forecast (as for the models); a forecast
    whose source month is a gap is NaN, one whose source month is before the series
    started is its newest value (:func:`source_rows`).

    Returns:
        Columns ``series_id, origin, horizon, month, forecast``.
    """
    newest = len(panel.months) - 1
    active = np.flatnonzero(~np.isnan(panel.values[newest]))
    horizons = np.arange(1, horizon + 1)
    # (horizon, active series): the same calendar month of the newest year before it.
    values = values_at(panel.values, source_rows(panel, horizons))[:, active]
    months = pd.DatetimeIndex([panel.end + pd.DateOffset(months=int(h)) for h in horizons])
    frame = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(panel.series)[active], horizon),
            "origin": panel.end,
            "horizon": np.tile(horizons, len(active)),
            "month": np.tile(months, len(active)),
            "forecast": values.T.ravel(),
        }
    )
    return frame.sort_values(["series_id", "horizon"], ignore_index=True)
