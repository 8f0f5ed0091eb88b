"""The Theta method on the log of the target: the second statistical member of a model.

Standard Theta (Assimakopoulos & Nikolopoulos; Hyndman & Billah's SES-with-drift form) on
``log1p(y)``: the series is seasonally adjusted with additive seasonal indices (classical
decomposition of its last :data:`SEASONAL_YEARS` years), the adjusted series is smoothed
with simple exponential smoothing, and the forecast adds half the slope of a linear trend
(fitted over the last :data:`TREND_MONTHS` months) per month ahead, then the season back.

It differs from damped Holt-Winters in the right ways for a combination: the trend is a
long-run average rather than a smoothed recent one, and the season is a recent average
rather than a smoothed state, so their errors are far from perfectly correlated. Only the
smoothing weight is a fitted parameter (grid search on in-sample one-step squared error);
season and trend are recomputed from whatever history a forecast starts from.
"""

from __future__ import annotations

import numpy as np

from demand_forecasting.models.holt_winters import SEASON, series_paths

#: Years of history the seasonal indices are averaged over.
SEASONAL_YEARS = 6
#: Months of seasonally adjusted history the smoothing weight and the trend are fitted on.
TREND_MONTHS = 240
_ALPHAS = np.linspace(0.05, 0.95, 19)


def seasonal_indices(z: np.ndarray) -> np.ndarray:
    """Additive seasonal indices of ``z`` (no gaps), ``SEASON`` values summing to zero.

    Index ``k`` belongs to the months whose position in ``z`` is ``k`` modulo ``SEASON``;
    they come from the detrended last :data:`SEASONAL_YEARS` years (a centred 2 x 12
    moving average is the trend).
    """
    window = min(len(z), SEASONAL_YEARS * SEASON + SEASON)
    recent = z[-window:]
    kernel = np.r_[0.5, np.ones(SEASON - 1), 0.5] / SEASON
    trend = np.convolve(recent, kernel, mode="same")
    half = SEASON // 2
    detrended = (recent - trend)[half:-half]
    position = (np.arange(half, window - half) + len(z) - window) % SEASON
    sums = np.bincount(position, weights=detrended, minlength=SEASON)
    counts = np.bincount(position, minlength=SEASON)
    indices = sums / np.maximum(counts, 1)
    return indices - indices.mean()


def _adjusted(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    season = seasonal_indices(z)
    return z - season[np.arange(len(z)) % SEASON], season


def fit_alpha(z: np.ndarray) -> float:
    """The SES weight with the least in-sample one-step squared error on the adjusted ``z``.

    Args:
        z: a series' log values without gaps, at least two seasons long.
    """
    adjusted, _ = _adjusted(z)
    recent = adjusted[-TREND_MONTHS:]
    level = np.full(len(_ALPHAS), recent[0])
    sse = np.zeros(len(_ALPHAS))
    for value in recent[1:]:
        error = value - level
        sse += error * error
        level = level + _ALPHAS * error
    return float(_ALPHAS[int(np.argmin(sse))])


def forecast_path(z: np.ndarray, alpha: float, horizon: int) -> np.ndarray:
    """Forecasts of ``z`` from every month, ``len(z) x horizon`` (NaN for the first season).

    Season and trend slope come from all of ``z`` (so earlier rows are in-sample fits, as for
    :func:`demand_forecasting.models.holt_winters.forecast_path`); the last row is the
    forecast from the newest month.
    """
    adjusted, season = _adjusted(z)
    recent = adjusted[-TREND_MONTHS:]
    slope = float(np.polyfit(np.arange(len(recent)), recent, 1)[0]) if len(recent) > 1 else 0.0
    level = np.empty(len(z))
    smoothed = adjusted[0]
    for t, value in enumerate(adjusted):
        smoothed += alpha * (value - smoothed)
        level[t] = smoothed
    steps = np.arange(1, horizon + 1)
    drift = 0.5 * slope * (steps - 1 + 1 / alpha)
    slots = (np.arange(len(z))[:, None] + steps[None, :]) % SEASON
    path = level[:, None] + drift[None, :] + season[slots]
    path[:SEASON] = np.nan
    return path


def panel_paths(
    log_values: np.ndarray,
    horizon: int,
    alphas: list[float | None] | None = None,
) -> tuple[np.ndarray, list[float | None]]:
    """Theta forecast paths of every series of a panel, ``T x S x horizon`` (NaN where none).

    Args:
        log_values: ``T x S`` log target with NaN gaps.
        horizon: months ahead.
        alphas: per series, a smoothing weight to reuse (None entries, or None: fit them).

    Returns:
        The paths (row ``t`` = forecasts made at month ``t``) and the weights used (None for
        a series too short for a seasonal model; the same rule as Holt-Winters).
    """
    return series_paths(log_values, horizon, fit_alpha, forecast_path, alphas)
