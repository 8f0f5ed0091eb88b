"""Model features: shapes, levels, and that nothing after the origin leaks in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.models import features, holt_winters
from demand_forecasting.models.features import FEATURE_NAMES, N_LAGS, design_rows
from demand_forecasting.models.panel import panel_from_history


def seasonal_history(months: int = 60, series: int = 2) -> pd.DataFrame:
    """Clean multiplicative seasonality with growth, one frame per series."""
    index = pd.date_range("2015-01-01", periods=months, freq="MS")
    rows = []
    for s in range(series):
        level = 100.0 * (s + 1)
        season = 1 + 0.2 * np.sin(2 * np.pi * index.month.to_numpy() / 12)
        growth = 1.01 ** np.arange(months)
        rows.append(
            pd.DataFrame({"series_id": f"s{s}", "month": index, "y": level * season * growth})
        )
    return pd.concat(rows, ignore_index=True)


def test_rows_per_origin_series_and_horizon() -> None:
    panel = panel_from_history(seasonal_history())
    paths, _ = holt_winters.panel_paths(panel.log_values, 3)
    rows = design_rows(panel, np.array([30, 40]), 3, paths)
    assert rows.features.shape == (2 * 2 * 3, len(FEATURE_NAMES))
    assert set(rows.horizon) == {1, 2, 3}
    # lag 00 is the origin month relative to the level (mean log of the last 12 months)
    z = panel.log_values
    first = (rows.origin == 30) & (rows.series == 0) & (rows.horizon == 1)
    level = z[19:31, 0].mean()
    assert np.isclose(rows.level[first][0], level)
    assert np.isclose(rows.features[first, FEATURE_NAMES.index("rel_lag_00")][0], z[30, 0] - level)
    assert np.isclose(rows.target[first][0], z[31, 0] - level)


def test_same_month_last_year_matches_the_target_month() -> None:
    panel = panel_from_history(seasonal_history())
    paths, _ = holt_winters.panel_paths(panel.log_values, 12)
    rows = design_rows(panel, np.array([40]), 12, paths)
    z = panel.log_values
    for h in (1, 5, 12):
        pick = (rows.series == 0) & (rows.horizon == h)
        feature = rows.features[pick, FEATURE_NAMES.index("same_month_1y")][0]
        assert np.isclose(feature + rows.level[pick][0], z[40 + h - 12, 0])


def test_features_do_not_see_months_after_the_origin() -> None:
    history = seasonal_history()
    changed = history.copy()
    origin = pd.Timestamp("2018-06-01")
    changed.loc[changed["month"] > origin, "y"] *= 5.0
    rows = []
    for frame in (history, changed):
        panel = panel_from_history(frame)
        cut = panel.until(origin)
        paths, _ = holt_winters.panel_paths(cut.log_values, 12)
        rows.append(design_rows(cut, np.array([len(cut.months) - 1]), 12, paths))
    np.testing.assert_allclose(rows[0].features, rows[1].features, equal_nan=True)


def test_origins_without_24_months_of_history_are_dropped() -> None:
    panel = panel_from_history(seasonal_history(months=30))
    paths, _ = holt_winters.panel_paths(panel.log_values, 2)
    rows = design_rows(panel, np.arange(0, 30), 2, paths)
    assert rows.origin.min() == N_LAGS - 1


def test_a_feature_named_but_not_built_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    panel = panel_from_history(seasonal_history())
    paths, _ = holt_winters.panel_paths(panel.log_values, 3)
    monkeypatch.setattr(features, "FEATURE_NAMES", (*FEATURE_NAMES, "mean_24"))
    with pytest.raises(ValueError, match="builds 32 feature columns but FEATURE_NAMES names 33"):
        features.design_rows(panel, np.array([30, 40]), 3, paths)
