"""Theta on the log: recovers a clean seasonal series, paths agree with reused weights."""

from __future__ import annotations

import numpy as np

from demand_forecasting.models import holt_winters, theta


def clean_series(months: int = 120) -> np.ndarray:
    t = np.arange(months)
    return np.log1p(200 * 1.004**t * (1 + 0.25 * np.sin(2 * np.pi * t / 12)))


def test_forecast_of_a_clean_series_is_close() -> None:
    z = clean_series(132)
    alpha = theta.fit_alpha(z[:120])
    path = theta.forecast_path(z[:120], alpha, 12)
    np.testing.assert_allclose(np.expm1(path[-1]), np.expm1(z[120:]), rtol=0.03)


def test_seasonal_indices_sum_to_zero_and_follow_the_season() -> None:
    z = clean_series(120)
    indices = theta.seasonal_indices(z)
    assert abs(indices.sum()) < 1e-9
    # sin peaks three months into each year: index 3 is the highest
    assert int(np.argmax(indices)) == 3


def test_noisy_series_gets_a_small_weight_and_a_random_walk_a_large_one() -> None:
    rng = np.random.default_rng(5)
    noisy = clean_series() + rng.normal(0, 0.05, 120)
    walk = clean_series() + np.cumsum(rng.normal(0, 0.05, 120))
    assert theta.fit_alpha(noisy) <= 0.3 < 0.8 <= theta.fit_alpha(walk)


def test_panel_paths_reuse_weights_and_skip_short_series() -> None:
    z = clean_series()
    short = np.full_like(z, np.nan)
    short[-(holt_winters.MIN_MONTHS - 1) :] = z[-(holt_winters.MIN_MONTHS - 1) :]
    panel = np.column_stack([z, short])
    paths, alphas = theta.panel_paths(panel, 6)
    assert alphas[0] is not None and alphas[1] is None
    assert np.isnan(paths[:, 1]).all()
    again, reused = theta.panel_paths(panel, 6, alphas)
    np.testing.assert_allclose(paths, again, equal_nan=True)
    assert reused == alphas
