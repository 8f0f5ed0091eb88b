"""Damped Holt-Winters on the log: fits a clean seasonal series, paths agree with forecasts."""

from __future__ import annotations

import numpy as np

from demand_forecasting.models import holt_winters


def clean_series(months: int = 96) -> np.ndarray:
    t = np.arange(months)
    return np.log1p(200 * 1.005**t * (1 + 0.25 * np.sin(2 * np.pi * t / 12)))


def test_forecast_of_a_clean_series_is_close() -> None:
    z = clean_series(108)
    params = holt_winters.fit_params(z[:96])
    path = holt_winters.forecast_path(z[:96], params, 12)
    np.testing.assert_allclose(np.expm1(path[-1]), np.expm1(z[96:]), rtol=0.03)


def test_short_series_get_no_model() -> None:
    z = clean_series(holt_winters.MIN_MONTHS - 1)
    paths, params = holt_winters.panel_paths(z[:, None], 6)
    assert params == [None]
    assert np.isnan(paths).all()


def test_reused_parameters_give_the_same_path() -> None:
    z = clean_series()[:, None]
    paths, params = holt_winters.panel_paths(z, 6)
    again, _ = holt_winters.panel_paths(z, 6, params)
    np.testing.assert_allclose(paths, again, equal_nan=True)


def test_gaps_are_carried_forward_and_stopped_series_end_early() -> None:
    z = clean_series()
    stopped = z.copy()
    stopped[80:] = np.nan
    stopped[50] = np.nan
    paths, params = holt_winters.panel_paths(np.column_stack([z, stopped]), 3)
    assert params[1] is not None
    assert np.isfinite(paths[79, 1]).all()
    assert np.isnan(paths[80:, 1]).all()
