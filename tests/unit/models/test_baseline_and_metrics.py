"""Seasonal naive and the accuracy measures, on numbers small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.models.baseline import seasonal_naive
from demand_forecasting.models.metrics import accuracy, seasonal_scale
from demand_forecasting.models.panel import HistoryError, panel_from_history


def history() -> pd.DataFrame:
    months = pd.date_range("2020-01-01", periods=24, freq="MS")
    a = pd.DataFrame({"series_id": "a", "month": months, "y": np.arange(24, dtype=float)})
    # b stops after 18 months: it gets no forecast
    b = pd.DataFrame({"series_id": "b", "month": months[:18], "y": 5.0})
    return pd.concat([a, b], ignore_index=True)


def test_seasonal_naive_repeats_last_year_for_active_series() -> None:
    forecast = seasonal_naive(panel_from_history(history()), 14)
    assert set(forecast["series_id"]) == {"a"}
    assert forecast["forecast"].tolist()[:12] == [float(v) for v in range(12, 24)]
    # h = 13, 14 reuse the newest year again
    assert forecast["forecast"].tolist()[12:] == [12.0, 13.0]
    assert forecast["month"].iloc[0] == pd.Timestamp("2022-01-01")


def test_seasonal_scale_is_mean_absolute_seasonal_difference() -> None:
    values = np.array([[1.0, 2.0, 4.0, np.nan]]).T
    assert seasonal_scale(values, season=1)[0] == pytest.approx(1.5)


def test_mase_wape_and_bias() -> None:
    frame = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "origin": pd.Timestamp("2021-01-01"),
            "actual": [10.0, 10.0, 100.0, 100.0],
            "scale": [2.0, 2.0, 10.0, 10.0],
            "model": [12.0, 8.0, 110.0, 100.0],
        }
    )
    result = accuracy(frame, "model")
    # MASE: a -> mean(2, 2)/2 = 1; b -> mean(10, 0)/10 = 0.5; mean = 0.75
    assert result.mase == pytest.approx(0.75)
    assert result.wape == pytest.approx(14 / 220)
    assert result.bias == pytest.approx(10 / 220)
    assert result.pairs == 2


def test_pairs_without_a_scale_count_in_wape_but_not_mase() -> None:
    frame = pd.DataFrame(
        {
            "series_id": ["a", "b"],
            "origin": pd.Timestamp("2021-01-01"),
            "actual": [10.0, 10.0],
            "scale": [0.0, 5.0],
            "m": [11.0, 15.0],
        }
    )
    result = accuracy(frame, "m")
    assert result.pairs == 1
    assert result.mase == pytest.approx(1.0)
    assert result.wape == pytest.approx(6 / 20)


def test_history_errors_name_the_rule() -> None:
    bad = history()
    bad.loc[0, "month"] = pd.Timestamp("2020-01-15")
    with pytest.raises(HistoryError, match="first of its month"):
        panel_from_history(bad)
    with pytest.raises(HistoryError, match="twice"):
        panel_from_history(pd.concat([history(), history().head(1)]))
    with pytest.raises(HistoryError, match="lacks column"):
        panel_from_history(history().drop(columns=["y"]))
