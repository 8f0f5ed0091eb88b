"""The pure part of the notebook reports: a series figure from pandas frames (no Spark)."""

from __future__ import annotations

import pandas as pd
import pytest

from demand_forecasting.reports import series_figure


def test_series_figure_plots_actuals_and_every_numeric_forecast_column() -> None:
    history = pd.DataFrame({"month": ["2024-01-01", "2024-02-01"], "y": [10.0, 12.0]})
    forecasts = pd.DataFrame(
        {
            "month": ["2024-03-01", "2024-04-01"],
            "forecast": [13.0, 14.0],
            "lower": [11.0, 11.5],
            "model_version": ["3", "3"],
        }
    )
    figure = series_figure(history, forecasts, title="NSW|Food")
    axes = figure.axes[0]
    assert [line.get_label() for line in axes.get_lines()] == ["actual", "forecast", "lower"]
    assert axes.get_title() == "NSW|Food"


def test_series_figure_without_forecasts_shows_actuals_only() -> None:
    history = pd.DataFrame({"month": pd.to_datetime(["2024-01-01"]), "y": [1.0]})
    assert len(series_figure(history).axes[0].get_lines()) == 1


def test_series_figure_names_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"history needs columns \['y'\]"):
        series_figure(pd.DataFrame({"month": ["2024-01-01"]}))
