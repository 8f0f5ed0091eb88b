"""Model features: one row per (series, origin month, horizon), pure numpy and pandas.

Training, backtests and scoring build their rows here and nowhere else. Everything is on the
log scale and relative to the series' level at the origin (the mean log of its last 12
months), so one model serves series of very different sizes (aggregates beside their leaves)
and learns growth and seasonal shape rather than levels:

- ``rel_lag_00 .. rel_lag_23``: the last 24 months (lag 00 = the origin month) minus the level;
- ``horizon`` (months ahead) and ``target_month`` (1-12): one direct model for all horizons;
- ``same_month_1y`` / ``same_month_2y``: the newest values of the target's calendar month;
- ``growth_12``: level minus the level 12 months earlier; ``recent_3``: last 3 months vs level;
- ``seasonal_diff_std``: volatility of the year-on-year change over the last 12 months;
- ``holt_winters``: the statistical members' forecast for the target month (stacking: damped
  Holt-Winters, combined with Theta by the recipe's ``theta_weight``; the name predates Theta
  and stays so that stored boosters keep their feature names).

Planned covariates (a dataset's ``planned`` columns, in the recipe's ``covariates``) add two
columns each, after the block above: ``plan_<name>``, the covariate at the target month (its
plan when forecasting, its actual value in training and backtests), and ``plan_<name>_rel``,
that value over the series' mean of the covariate in the 12 months up to the origin (a price
10 % under its usual level reads 0.9 whatever the series' price; NaN where that mean is 0 or
unknown). Nothing else after the origin is read.

The target is ``log1p(y[t+h])`` minus the level; a forecast adds the level back.

A new feature is a name appended to :data:`FEATURE_NAMES` and its column at the same position
of the block in :func:`design_rows`. Models trained before it keep their own feature list
(:meth:`~demand_forecasting.models.forecaster.SegmentForecaster.booster_input`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from demand_forecasting.models.panel import Panel

N_LAGS = 24
LEVEL_MONTHS = 12
#: Months of history a segment needs before a model can be trained for it (its features
#: look :data:`N_LAGS` months back); a younger segment without champion waits for them.
MIN_HISTORY_MONTHS = N_LAGS

FEATURE_NAMES: tuple[str, ...] = (
    *(f"rel_lag_{k:02d}" for k in range(N_LAGS)),
    "horizon",
    "target_month",
    "same_month_1y",
    "same_month_2y",
    "growth_12",
    "recent_3",
    "seasonal_diff_std",
    "holt_winters",
)


def covariate_feature_names(covariates: Sequence[str]) -> tuple[str, ...]:
    """The feature names of ``covariates``, in the order :func:`design_rows` builds them."""
    return tuple(name for c in covariates for name in (f"plan_{c}", f"plan_{c}_rel"))


def feature_names(covariates: Sequence[str] = ()) -> tuple[str, ...]:
    """Every feature a model with these planned covariates is trained on."""
    return (*FEATURE_NAMES, *covariate_feature_names(covariates))


@dataclass(frozen=True)
class DesignRows:
    """Feature rows with where they come from.

    Attributes:
        features: ``n x len(feature_names(covariates))`` float matrix (NaN = unknown,
            XGBoost handles it).
        target: ``n`` relative log targets (NaN where the target month is not observed).
        origin: row index into the panel's months of each row's origin.
        series: column index into the panel's series.
        horizon: months ahead, 1..H.
        level: the level added back to a prediction.
    """

    features: np.ndarray
    target: np.ndarray
    origin: np.ndarray
    series: np.ndarray
    horizon: np.ndarray
    level: np.ndarray

    def select(self, keep: np.ndarray) -> DesignRows:
        """The rows where ``keep`` is True."""
        return DesignRows(
            self.features[keep],
            self.target[keep],
            self.origin[keep],
            self.series[keep],
            self.horizon[keep],
            self.level[keep],
        )


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, on purpose
        return np.nanmean(values, axis=axis)


def _nanstd(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(values, axis=axis)


def design_rows(
    panel: Panel,
    origins: np.ndarray,
    horizon: int,
    holt_winters: np.ndarray,
    covariates: Sequence[str] = (),
) -> DesignRows:
    """Feature rows for every series at each origin and every horizon 1..``horizon``.

    Args:
        panel: the segment's history.
        origins: row indices into ``panel.months`` to stand at (each needs 24 months before
            it; earlier ones are dropped).
        horizon: months ahead.
        holt_winters: ``T x S x horizon`` statistical forecast paths (Holt-Winters from
            :func:`demand_forecasting.models.holt_winters.panel_paths`, or its combination
            with Theta).
        covariates: planned covariates of ``panel`` to add (:func:`covariate_feature_names`).

    Returns:
        Rows whose origin month is observed, in (horizon, origin, series) order.

    Raises:
        ValueError: the block builds another number of columns than :data:`FEATURE_NAMES`
            names (a feature added to one and not the other).
    """
    z = panel.log_values
    n_months, n_series = z.shape
    origins = np.asarray(origins, dtype=int)
    origins = origins[(origins >= N_LAGS - 1) & (origins < n_months)]
    # windows[t - 23] holds months t-23 .. t; lag k of origin t is windows[t - 23][..., 23 - k]
    windows = sliding_window_view(z, N_LAGS, axis=0)[origins - (N_LAGS - 1)]  # O x S x 24
    lags = windows[..., ::-1]  # O x S x 24, lag 0 first
    level = _nanmean(lags[..., :LEVEL_MONTHS], axis=2)  # O x S
    previous_level = _nanmean(lags[..., LEVEL_MONTHS:], axis=2)
    recent = _nanmean(lags[..., :3], axis=2) - level
    volatility = _nanstd(lags[..., :LEVEL_MONTHS] - lags[..., LEVEL_MONTHS:], axis=2)
    relative = lags - level[..., None]
    origin_month = panel.months[origins].month.to_numpy()
    usual = {c: _covariate_usual(panel.covariates[c], origins) for c in covariates}

    blocks, targets, origin_idx, series_idx, horizons, levels = [], [], [], [], [], []
    series_range = np.arange(n_series)
    for h in range(1, horizon + 1):
        same_1y = (-h) % 12
        target_rows = origins + h
        known = target_rows < n_months
        target = np.full((len(origins), n_series), np.nan)
        target[known] = z[target_rows[known]] - level[known]
        block = np.concatenate(
            [
                relative,
                np.broadcast_to(np.float64(h), (len(origins), n_series, 1)),
                np.broadcast_to(
                    ((origin_month - 1 + h) % 12 + 1)[:, None, None].astype(float),
                    (len(origins), n_series, 1),
                ),
                relative[..., same_1y : same_1y + 1],
                relative[..., same_1y + 12 : same_1y + 13],
                (level - previous_level)[..., None],
                recent[..., None],
                volatility[..., None],
                (holt_winters[origins, :, h - 1] - level)[..., None],
            ],
            axis=2,
        )
        if block.shape[-1] != len(FEATURE_NAMES):
            raise ValueError(
                f"design_rows builds {block.shape[-1]} feature columns but FEATURE_NAMES names "
                f"{len(FEATURE_NAMES)}: add a feature's name to FEATURE_NAMES and its column to "
                "the block together, at the same position"
            )
        if covariates:
            block = np.concatenate(
                [
                    block,
                    *(
                        _covariate_columns(panel.covariates[c], origins + h, usual[c])
                        for c in covariates
                    ),
                ],
                axis=2,
            )
        blocks.append(block.reshape(-1, block.shape[-1]))
        targets.append(target.ravel())
        origin_idx.append(np.repeat(origins, n_series))
        series_idx.append(np.tile(series_range, len(origins)))
        horizons.append(np.full(len(origins) * n_series, h))
        levels.append(level.ravel())
    rows = DesignRows(
        features=np.concatenate(blocks),
        target=np.concatenate(targets),
        origin=np.concatenate(origin_idx),
        series=np.concatenate(series_idx),
        horizon=np.concatenate(horizons),
        level=np.concatenate(levels),
    )
    # A row needs its origin month observed and a level to be relative to.
    usable = ~np.isnan(rows.features[:, 0]) & ~np.isnan(rows.level)
    return rows.select(usable)


def _covariate_usual(values: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """``origins x series``: the covariate's mean over the 12 months up to each origin."""
    if len(origins) == 0:
        return np.empty((0, values.shape[1]))
    windows = sliding_window_view(values[: origins.max() + 1], LEVEL_MONTHS, axis=0)
    return _nanmean(windows[origins - (LEVEL_MONTHS - 1)], axis=2)


def _covariate_columns(values: np.ndarray, targets: np.ndarray, usual: np.ndarray) -> np.ndarray:
    """``origins x series x 2``: the covariate at each target month, and over its usual level."""
    at_target = np.full(usual.shape, np.nan)
    known = targets < len(values)
    at_target[known] = values[targets[known]]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(usual != 0, at_target / usual, np.nan)
    return np.stack([at_target, relative], axis=2)
