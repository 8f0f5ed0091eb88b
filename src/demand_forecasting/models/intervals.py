"""Forecast intervals: how far the actuals fell from the forecasts in the backtest.

A planner sets safety stock from the spread of the forecast, not from the forecast alone.
The spread comes from the errors the model made where its errors are known: the
rolling-origin backtest that ``train`` runs anyway (a model fitted at the oldest origin,
forecasting from every origin, as a champion serves). For each horizon h the interval is
the empirical quantiles of the log errors ``log1p(actual) - log1p(forecast)`` at horizons
h-1..h+1 over every series and origin of the segment (split-conformal, pooled over
neighbouring horizons so that each quantile rests on enough errors; wider where a small
segment has fewer than :data:`MIN_ERRORS` there), made to widen with the horizon and to
hold the forecast itself. Around a forecast f:
``[expm1(log1p(f) + lower_h), expm1(log1p(f) + upper_h)]``.

The seasonal-naive recipe (the fallback) fits nothing and is not backtested on its own: its
interval comes from each series' own history, the quantiles of its year-on-year log changes
over the last :data:`NAIVE_YEARS` years, which are exactly seasonal naive's errors there.

:data:`LEVEL` is the share of actuals an interval means to hold (80 %, a common planning
level); the monitor reports the share that did (``interval_coverage``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The interval's nominal coverage.
LEVEL = 0.8
#: Errors each horizon's quantiles rest on at least (fewer in the whole backtest: no interval).
MIN_ERRORS = 20
#: Years of history behind a seasonal-naive interval.
NAIVE_YEARS = 5


@dataclass(frozen=True)
class ForecastInterval:
    """Log-scale offsets of the interval bounds, one per horizon 1..H."""

    level: float
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def to_json(self) -> dict[str, object]:
        """JSON-ready form (the forecaster's state)."""
        return {"level": self.level, "lower": list(self.lower), "upper": list(self.upper)}

    @staticmethod
    def from_json(data: dict[str, object] | None) -> ForecastInterval | None:
        """Inverse of :meth:`to_json` (None stays None: a model saved without one)."""
        if not data:
            return None
        lower, upper = data["lower"], data["upper"]
        assert isinstance(lower, list) and isinstance(upper, list)
        return ForecastInterval(
            float(str(data["level"])),
            tuple(float(v) for v in lower),
            tuple(float(v) for v in upper),
        )

    def bounds(self, forecast_log: np.ndarray, horizon: np.ndarray) -> tuple[np.ndarray, ...]:
        """(lower, upper) on the target's scale around log1p forecasts at ``horizon``."""
        index = np.clip(horizon.astype(int), 1, len(self.lower)) - 1
        lower = np.clip(np.expm1(forecast_log + np.asarray(self.lower)[index]), 0.0, None)
        upper = np.clip(np.expm1(forecast_log + np.asarray(self.upper)[index]), 0.0, None)
        return lower, upper


def _quantiles(errors: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(errors, [tail, 1.0 - tail])
    return float(low), float(high)


def from_backtest(
    frame: pd.DataFrame, method: str, horizon: int, level: float = LEVEL
) -> ForecastInterval | None:
    """The interval of ``method``'s forecasts from a backtest frame.

    Args:
        frame: a :func:`~demand_forecasting.models.backtest.backtest` frame (``horizon``,
            ``actual`` and the ``method`` column).
        method: the forecast column whose errors count.
        horizon: H.
        level: nominal coverage.

    Returns:
        None when the whole backtest has fewer than :data:`MIN_ERRORS` errors.
    """
    usable = frame[["horizon", "actual", method]].dropna()
    usable = usable[(usable["actual"] >= 0) & (usable[method] >= 0)]
    errors = np.log1p(usable["actual"].to_numpy(float)) - np.log1p(usable[method].to_numpy(float))
    steps = usable["horizon"].to_numpy(int)
    if len(errors) < MIN_ERRORS:
        return None
    lower, upper = [], []
    for h in range(1, horizon + 1):
        # The nearest horizons, h-1..h+1 or wider until there are MIN_ERRORS errors (a
        # segment of one series has K per horizon).
        reach = 1
        while np.sum(np.abs(steps - h) <= reach) < MIN_ERRORS:
            reach += 1
        low, high = _quantiles(errors[np.abs(steps - h) <= reach], level)
        lower.append(low)
        upper.append(high)
    # Uncertainty does not shrink with the horizon: widen where the pooled sample says less.
    # And the interval holds its own forecast: where the backtest's errors all lean one way
    # (a few origins of one bias), it reaches the forecast instead of lying beside it.
    return ForecastInterval(
        level,
        tuple(np.minimum(np.minimum.accumulate(lower), 0.0).tolist()),
        tuple(np.maximum(np.maximum.accumulate(upper), 0.0).tolist()),
    )


def seasonal_naive_offsets(
    log_values: np.ndarray, years: int = 1, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Per series, the log offsets of a seasonal-naive interval (NaN: too little history).

    Args:
        log_values: ``months x series`` log1p values (NaN where missing), newest month last.
        years: how many years back the forecast's source month lies (1 for h <= 12).
        level: nominal coverage.
    """
    lag = 12 * years
    window = log_values[-(12 * NAIVE_YEARS + lag) :]
    changes = window[lag:] - window[:-lag]
    tail = (1.0 - level) / 2.0
    enough = np.sum(~np.isnan(changes), axis=0) >= MIN_ERRORS
    lower = np.full(changes.shape[1], np.nan)
    upper = np.full(changes.shape[1], np.nan)
    if enough.any():
        # Held around the forecast, as from_backtest's (a growing series' changes are all > 0).
        lower[enough] = np.minimum(np.nanquantile(changes[:, enough], tail, axis=0), 0.0)
        upper[enough] = np.maximum(np.nanquantile(changes[:, enough], 1.0 - tail, axis=0), 0.0)
    return lower, upper
