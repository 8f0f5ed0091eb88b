"""Forecast intervals: backtest quantiles per horizon, widening, calibration, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.models import intervals
from demand_forecasting.models.forecaster import fit_forecaster, load_forecaster
from demand_forecasting.models.intervals import ForecastInterval, from_backtest
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.segment_training import train_segment

SMALL = Recipe(horizon=6).with_overrides(xgb_params={"n_estimators": 40, "learning_rate": 0.2})


def _frame(errors_by_horizon: dict[int, np.ndarray]) -> pd.DataFrame:
    """A backtest frame whose log errors are exactly the given ones (forecast 100)."""
    rows = [
        {"horizon": h, "actual": float(np.expm1(np.log1p(100.0) + e)), "candidate": 100.0}
        for h, errors in errors_by_horizon.items()
        for e in errors
    ]
    return pd.DataFrame(rows)


def test_quantiles_of_the_log_errors_pooled_over_neighbouring_horizons() -> None:
    rng = np.random.default_rng(0)
    spread = {1: 0.02, 2: 0.04, 3: 0.06}
    frame = _frame({h: rng.normal(0, s, 400) for h, s in spread.items()})

    found = from_backtest(frame, "candidate", horizon=3, level=0.8)

    assert found is not None
    # h = 2 pools h = 1..3: a mixture of the three spreads, 10 % / 90 % quantiles.
    pooled = np.log1p(frame["actual"].to_numpy()) - np.log1p(100.0)
    assert found.lower[1] == pytest.approx(np.quantile(pooled, 0.1), abs=1e-9)
    assert found.upper[1] == pytest.approx(np.quantile(pooled, 0.9), abs=1e-9)
    # Widening: never narrower at a longer horizon.
    assert list(found.lower) == sorted(found.lower, reverse=True)
    assert list(found.upper) == sorted(found.upper)
    assert found.lower[2] < 0 < found.upper[2]


def test_an_interval_holds_its_forecast_even_when_every_error_leans_one_way() -> None:
    # Six origins of under-forecasting: every error positive.
    frame = _frame({h: np.linspace(0.05, 0.15, 30) for h in (1, 2)})

    found = from_backtest(frame, "candidate", horizon=2, level=0.8)

    assert found is not None
    assert found.lower == (0.0, 0.0)
    assert found.upper[0] == pytest.approx(np.quantile(np.linspace(0.05, 0.15, 30), 0.9))


def test_a_small_segment_pools_more_horizons_and_too_few_errors_give_none() -> None:
    # One series, 6 origins: 6 errors per horizon. h = 1 needs h = 1..4 to reach 20.
    spread = {h: np.linspace(-0.01 * h, 0.01 * h, 6) for h in range(1, 7)}
    found = from_backtest(_frame(spread), "candidate", horizon=6, level=0.8)

    assert found is not None
    near = np.concatenate([spread[h] for h in (1, 2, 3, 4)])
    assert found.lower[0] == pytest.approx(np.quantile(near, 0.1))
    few = _frame({h: np.zeros(3) for h in (1, 2, 3, 4, 5, 6)})
    assert from_backtest(few, "candidate", horizon=6) is None


def test_an_interval_from_past_errors_covers_its_level_of_new_ones() -> None:
    # Calibration: errors of one distribution, interval from 600, coverage on 20,000 more.
    rng = np.random.default_rng(7)
    past = _frame({h: rng.standard_t(5, 200) * 0.05 for h in (1, 2)})
    interval = from_backtest(past, "candidate", horizon=2, level=0.8)
    assert interval is not None
    new_errors = rng.standard_t(5, 20_000) * 0.05
    forecast_log = np.full(new_errors.size, np.log1p(100.0))
    lower, upper = interval.bounds(forecast_log, np.full(new_errors.size, 2))
    actual = np.expm1(forecast_log + new_errors)

    coverage = np.mean((actual >= lower) & (actual <= upper))

    assert 0.76 < coverage < 0.84


def history(months: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    index = pd.date_range("2010-01-01", periods=months, freq="MS")
    t = np.arange(months)
    frames = []
    for s, scale in enumerate((50.0, 400.0, 90.0, 120.0)):
        y = scale * 1.004**t * (1 + 0.3 * np.sin(2 * np.pi * t / 12 + s))
        y *= np.exp(rng.normal(0, 0.05, months))
        frames.append(pd.DataFrame({"series_id": f"s{s}", "month": index, "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_a_trained_segment_model_forecasts_within_its_interval_and_keeps_it(
    tmp_path: Path,
) -> None:
    frame = history()

    row = train_segment("seg", frame, SMALL, origins=12)

    state = json.loads(str(row["state"]))
    assert state["interval"]["level"] == intervals.LEVEL
    assert len(state["interval"]["lower"]) == SMALL.horizon
    forecaster = fit_forecaster(frame, SMALL)
    forecaster.interval = ForecastInterval.from_json(state["interval"])
    forecaster.to_files(tmp_path)
    forecast = load_forecaster(tmp_path).predict(frame)
    assert forecast["forecast_lower"].notna().all()
    assert (forecast["forecast_lower"] <= forecast["forecast"]).all()
    assert (forecast["forecast"] <= forecast["forecast_upper"]).all()
    width = (forecast["forecast_upper"] - forecast["forecast_lower"]) / forecast["forecast"]
    assert width.min() > 0.0 and width.max() < 1.0  # 5 % noise: a band of tens of percent


def test_a_model_saved_without_an_interval_forecasts_nan_bounds(tmp_path: Path) -> None:
    frame = history()
    forecaster = fit_forecaster(frame, SMALL)
    forecaster.to_files(tmp_path)
    state_path = tmp_path / "forecaster.json"
    state = json.loads(state_path.read_text())
    state.pop("interval")  # as written before intervals existed
    state_path.write_text(json.dumps(state))

    forecast = load_forecaster(tmp_path).predict(frame)

    assert forecast["forecast"].notna().all()
    assert forecast["forecast_lower"].isna().all() and forecast["forecast_upper"].isna().all()


def test_the_seasonal_naive_interval_comes_from_each_series_year_on_year_changes() -> None:
    frame = history()
    short = frame[frame["month"] >= "2017-06-01"]  # 31 months: too few yearly changes
    naive = fit_forecaster(frame, Recipe(horizon=6, method="seasonal_naive"))

    forecast = naive.predict(frame)
    on_short = naive.predict(short)

    assert (forecast["forecast_lower"] < forecast["forecast"]).all()
    assert (forecast["forecast"] < forecast["forecast_upper"]).all()
    # The same offsets at every horizon <= 12: last year's value is one year away for all.
    offset = (np.log1p(forecast["forecast_upper"]) - np.log1p(forecast["forecast"])).round(9)
    assert offset.groupby(forecast["series_id"]).nunique().eq(1).all()
    assert on_short["forecast_lower"].isna().all()


def test_the_seasonal_naive_interval_holds_its_forecast_to_the_last_digit() -> None:
    # Growing counts (every year-on-year change > 0) put the lower offset at exactly 0, so
    # the lower bound is the forecast itself, as PBS's script counts showed: through
    # expm1(log1p(v)) it came out a rounding error above v (1061597.0000000009).
    months = pd.date_range("2010-01-01", periods=84, freq="MS")
    rng = np.random.default_rng(7)
    frame = pd.concat(
        pd.DataFrame(
            {
                "series_id": f"s{s}",
                "month": months,
                "y": np.round(base * 1.01 ** np.arange(84) * (1 + 0.3 * np.sin(np.arange(84) / 2))),
            }
        )
        for s, base in enumerate(rng.uniform(10.0, 2e6, size=40))
    )
    naive = fit_forecaster(frame, Recipe(horizon=12, method="seasonal_naive"))

    forecast = naive.predict(frame)

    assert forecast["forecast_lower"].notna().all()
    assert (forecast["forecast_lower"] <= forecast["forecast"]).all()
    assert (forecast["forecast"] <= forecast["forecast_upper"]).all()


def test_the_seasonal_naive_interval_rests_only_on_changes_since_a_series_started() -> None:
    # A product written as zeros for years, launched 30 months ago: its year-on-year change
    # across the launch (0 -> ~600, log +6.4) made an upper bound ~500 times its forecast.
    frame = history()
    months = pd.date_range(frame["month"].min(), frame["month"].max(), freq="MS")
    sales = np.where(np.arange(len(months)) >= len(months) - 30, 600.0, 0.0)
    launched = pd.DataFrame({"series_id": "launched", "month": months, "y": sales})
    naive = fit_forecaster(frame, Recipe(horizon=6, method="seasonal_naive"))

    forecast = naive.predict(pd.concat([frame, launched])).set_index("series_id")

    # 18 changes since the launch: fewer than intervals.MIN_ERRORS, so no interval.
    assert forecast.loc["launched", "forecast"].eq(600.0).all()
    assert forecast.loc["launched", ["forecast_lower", "forecast_upper"]].isna().all().all()
    assert forecast.drop(index="launched")["forecast_upper"].notna().all()
