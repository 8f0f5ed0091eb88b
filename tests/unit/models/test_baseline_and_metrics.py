"""Seasonal naive and the accuracy measures, on numbers small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.models.baseline import seasonal_naive
from demand_forecasting.models.metrics import accuracy, seasonal_scale, segment_accuracy
from demand_forecasting.models.panel import DORMANT_MONTHS, HistoryError, panel_from_history


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


def launched(zeros: int, months: int = 48, level: float = 500.0) -> pd.DataFrame:
    """A series of ``zeros`` zero months (a stray 1 among them), then sales at ``level``."""
    index = pd.date_range("2015-01-01", periods=months, freq="MS")
    y = np.where(np.arange(months) < zeros, 0.0, level + np.arange(months))
    y[2] = 1.0  # a stray script years before the launch
    return pd.DataFrame({"series_id": "launched", "month": index, "y": y})


def test_a_series_starts_after_its_leading_zeros_or_a_dormant_year() -> None:
    index = pd.date_range("2015-01-01", periods=30, freq="MS")
    zeros_then_sales = np.r_[np.zeros(4), np.full(26, 7.0)]
    relaunched = np.r_[np.full(6, 3.0), np.zeros(DORMANT_MONTHS), np.full(12, 9.0)]
    short_pause = np.r_[np.full(6, 3.0), np.zeros(DORMANT_MONTHS - 1), np.full(13, 9.0)]
    # A missing month amid the zeros neither counts as one nor breaks the run.
    gap_in_the_zeros = np.r_[np.full(6, 3.0), np.zeros(6), np.nan, np.zeros(6), np.full(11, 9.0)]
    columns = {
        "zeros_then_sales": zeros_then_sales,
        "relaunched": relaunched,
        "short_pause": short_pause,
        "gap_in_the_zeros": gap_in_the_zeros,
        "never_sold": np.zeros(30),
    }
    frame = pd.concat(
        [pd.DataFrame({"series_id": s, "month": index, "y": v}) for s, v in columns.items()]
    )
    panel = panel_from_history(frame)
    start = dict(zip(panel.series, panel.start_rows(), strict=True))
    assert start == {
        "zeros_then_sales": 4,
        "relaunched": 6 + DORMANT_MONTHS,
        "short_pause": 0,
        "gap_in_the_zeros": 6 + DORMANT_MONTHS + 1,
        "never_sold": 0,
    }
    assert panel.not_started()[:, panel.series.index("relaunched")].sum() == 6 + DORMANT_MONTHS


def test_seasonal_naive_never_forecasts_from_before_a_series_started() -> None:
    # Launched 5 months before the end: h = 1..7 would copy the zeros of a year before.
    panel = panel_from_history(launched(zeros=43))
    forecast = seasonal_naive(panel, 12)["forecast"].to_numpy()
    newest = panel.values[-1, 0]
    np.testing.assert_array_equal(forecast[:7], np.full(7, newest))
    np.testing.assert_array_equal(forecast[7:], panel.values[43:48, 0])


def test_the_gate_leaves_out_pairs_of_near_zero_scale_but_the_protocol_keeps_them() -> None:
    # Five series of scale ~10 forecast a little better than naive; one that was all zeros
    # (scale 0.05) launched during the horizon: its MASE is in the thousands for both.
    rows = [(f"s{i}", 100.0, 10.0 + i, 104.0, 106.0) for i in range(5)]
    rows.append(("launched", 500.0, 0.05, 0.0, 1.0))
    frame = pd.DataFrame(rows, columns=["series_id", "actual", "scale", "model", "naive"])
    frame["origin"] = pd.Timestamp("2021-01-01")
    gate_model, gate_naive = segment_accuracy(frame, "model"), segment_accuracy(frame, "naive")
    assert gate_model.pairs == 5 and gate_model.mase < gate_naive.mase
    assert gate_model.mase == pytest.approx(np.mean([4.0 / (10 + i) for i in range(5)]))
    assert gate_model.wape == pytest.approx((5 * 4 + 500) / 1000)  # WAPE keeps every row
    protocol_model, protocol_naive = accuracy(frame, "model"), accuracy(frame, "naive")
    assert protocol_model.pairs == 6 and protocol_model.mase > protocol_naive.mase
    assert protocol_model.mase > 1000
