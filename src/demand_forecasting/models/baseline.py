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
    active = ~np.isnan(panel.values[newest])
    rows = []
    for h in range(1, horizon + 1):
        source = newest + h - 12 * int(np.ceil(h / 12))
        values = panel.values[source] if source >= 0 else np.full(len(panel.series), np.nan)
        rows.append(
            pd.DataFrame(
                {
                    "series_id": np.asarray(panel.series)[active],
                    "origin": panel.end,
                    "horizon": h,
                    "month": panel.end + pd.DateOffset(months=h),
                    "forecast": values[active],
                }
            )
        )
    return pd.concat(rows, ignore_index=True).sort_values(
        ["series_id", "horizon"], ignore_index=True
    )
