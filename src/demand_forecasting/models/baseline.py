"""The seasonal-naive baseline: each month forecast by the same calendar month a year before.

Every model must beat it (validation gate) and every report shows it beside the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_forecasting.models.panel import Panel


def seasonal_naive(panel: Panel, horizon: int) -> pd.DataFrame:
    """Seasonal-naive forecasts of h = 1..``horizon`` from the panel's newest month.

    Only series observed in the newest month are forecast (as for the models); a forecast
    whose source month is a gap is NaN.

    Returns:
        Columns ``series_id, origin, horizon, month, forecast``.
    """
    newest = len(panel.months) - 1
    active = np.flatnonzero(~np.isnan(panel.values[newest]))
    horizons = np.arange(1, horizon + 1)
    source = newest + horizons - 12 * np.ceil(horizons / 12).astype(int)
    # (horizon, active series): the same calendar month of the newest year before it.
    values = np.full((horizon, len(active)), np.nan)
    known = source >= 0
    values[known] = panel.values[source[known]][:, active]
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
