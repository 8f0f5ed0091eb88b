"""The segment forecaster: fits, forecasts active series only, survives a save/load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.models import features
from demand_forecasting.models import forecaster as forecaster_module
from demand_forecasting.models.backtest import NAIVE, backtest, backtest_origins
from demand_forecasting.models.forecaster import (
    FORECAST_COLUMNS,
    FeatureMismatchError,
    fit_forecaster,
    load_forecaster,
)
from demand_forecasting.models.metrics import accuracy
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.segment_training import (
    input_example,
    read_input_example,
    train_segment,
)

SMALL = Recipe(horizon=6).with_overrides(xgb_params={"n_estimators": 60, "learning_rate": 0.15})


def history(months: int = 96) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    index = pd.date_range("2012-01-01", periods=months, freq="MS")
    t = np.arange(months)
    frames = []
    for s, scale in enumerate((50.0, 400.0, 90.0)):
        y = scale * 1.004**t * (1 + 0.3 * np.sin(2 * np.pi * t / 12 + s))
        y *= np.exp(rng.normal(0, 0.03, months))
        frames.append(pd.DataFrame({"series_id": f"s{s}", "month": index, "y": y}))
    frame = pd.concat(frames, ignore_index=True)
    # s2 stopped reporting 10 months before the end
    return frame[~((frame["series_id"] == "s2") & (frame["month"] > index[-11]))]


def test_forecasts_every_horizon_of_active_series() -> None:
    frame = history()
    forecaster = fit_forecaster(frame, SMALL)
    forecast = forecaster.predict(frame)
    assert list(forecast.columns) == list(FORECAST_COLUMNS)
    assert sorted(forecast["series_id"].unique()) == ["s0", "s1"]
    assert forecast.groupby("series_id")["horizon"].apply(list).tolist() == [[1, 2, 3, 4, 5, 6]] * 2
    assert (forecast["month"] > frame["month"].max()).all()
    assert (forecast["forecast"] > 0).all()
    importance = forecaster.feature_importance()
    assert abs(sum(importance.values()) - 1.0) < 1e-6


@pytest.mark.parametrize("months", [1, features.N_LAGS - 1])
def test_a_segment_shorter_than_the_lag_window_is_refused_naming_its_months(months: int) -> None:
    # A new segment arrives with a few months of history: training names the segment, the
    # months it has and the months a model needs (it failed with numpy's "window shape
    # cannot be larger than input array shape").
    frame = history()
    frame = frame[frame["month"] > frame["month"].max() - pd.DateOffset(months=months)]

    with pytest.raises(
        ValueError, match=rf"segment new_seg has {months} month\(s\) of history"
    ) as error:
        train_segment("new_seg", frame, SMALL, origins=6)

    assert f"a model needs at least {features.N_LAGS}" in str(error.value)


def test_input_example_of_whole_counts_reads_back_as_logged() -> None:
    # Counts (scripts, units) are whole numbers and ids may have leading zeros: the example
    # read back from the result row's JSON must keep y double (the model signature refuses
    # int64: every PBS segment failed to log) and "001" a text.
    frame = history().assign(
        y=lambda f: f["y"].round(),
        series_id=lambda f: f["series_id"].str.replace("s", "00"),
    )
    row = train_segment("counts", frame, SMALL, origins=2)

    example = read_input_example(str(row["example"]))

    pd.testing.assert_frame_equal(example, input_example(frame))
    assert example["y"].dtype == np.float64
    assert example["series_id"].iloc[0] == "000"


def test_saved_forecaster_predicts_the_same(tmp_path: Path) -> None:
    frame = history()
    forecaster = fit_forecaster(frame, SMALL)
    forecaster.to_files(tmp_path)
    loaded = load_forecaster(tmp_path)
    pd.testing.assert_frame_equal(forecaster.predict(frame), loaded.predict(frame))
    assert loaded.recipe == SMALL


def test_backtest_beats_seasonal_naive_on_clean_seasonal_data() -> None:
    frame = history()
    origins = backtest_origins(frame["month"].max(), 6, 2)
    result = backtest(frame, {"model": SMALL}, origins, 6)
    assert set(result["origin"]) == set(origins)
    assert result["actual"].notna().all()
    assert accuracy(result, "model").mase < accuracy(result, NAIVE).mase


def test_backtest_fits_once_at_the_oldest_origin_and_never_sees_later_months() -> None:
    frame = history()
    origins = backtest_origins(frame["month"].max(), 6, 3)
    result = backtest(frame, {"model": SMALL}, origins, 6)
    # The same forecasts as a model fitted on the months up to the oldest origin only (one
    # fitted on more rows would differ), given the history known at each origin.
    model = fit_forecaster(frame[frame["month"] <= origins[0]], SMALL)
    for origin in origins:
        known = frame[frame["month"] <= origin]
        expected = model.predict(known)[["series_id", "horizon", "forecast"]]
        got = result[result["origin"] == origin][["series_id", "horizon", "model"]]
        merged = expected.merge(got, on=["series_id", "horizon"], validate="one_to_one")
        assert len(merged) == len(expected) > 0
        np.testing.assert_allclose(merged["forecast"], merged["model"])


def test_forecast_combines_its_members_on_the_log_scale() -> None:
    frame = history()
    recipe = SMALL.with_overrides(xgb_weight=0.25, theta_weight=0.5)
    forecast = fit_forecaster(frame, recipe).predict(frame)
    logs = {c: np.log1p(forecast[f"forecast_{c}"]) for c in ("xgb", "holt_winters", "theta")}
    statistical = 0.5 * logs["theta"] + 0.5 * logs["holt_winters"]
    expected = np.expm1(0.25 * logs["xgb"] + 0.75 * statistical)
    np.testing.assert_allclose(forecast["forecast"], expected, rtol=1e-9)


def test_zero_weight_members_leave_the_forecast_alone() -> None:
    frame = history()
    recipe = SMALL.with_overrides(xgb_weight=0.0, theta_weight=0.0)
    forecast = fit_forecaster(frame, recipe).predict(frame)
    np.testing.assert_allclose(forecast["forecast"], forecast["forecast_holt_winters"])
    assert forecast["forecast_theta"].notna().all()


def test_a_model_saved_before_theta_still_loads_and_forecasts(tmp_path: Path) -> None:
    frame = history()
    legacy = Recipe.from_json(
        '{"horizon": 6, "train_window_months": 120, "recency_halflife_months": 0.0, '
        '"xgb_weight": 0.5, "xgb_params": {"n_estimators": 20}}'
    )
    assert legacy.theta_weight == 0.0
    forecaster = fit_forecaster(frame, legacy)
    forecaster.to_files(tmp_path)
    state = json.loads((tmp_path / "forecaster.json").read_text())
    del state["theta_alphas"]
    (tmp_path / "forecaster.json").write_text(json.dumps(state))
    loaded = load_forecaster(tmp_path)
    assert loaded.theta_alphas == {}
    pd.testing.assert_frame_equal(forecaster.predict(frame), loaded.predict(frame))


def test_the_seasonal_naive_recipe_fits_nothing_and_forecasts_last_years_values(
    tmp_path: Path,
) -> None:
    frame = history(months=40)
    # A gap where s1's forecast for h = 1 would look (the month 11 months before the end).
    gap_month = frame["month"].max() - pd.DateOffset(months=11)
    frame = frame[~((frame["series_id"] == "s1") & (frame["month"] == gap_month))]
    recipe = Recipe(horizon=14, method="seasonal_naive")
    forecaster = fit_forecaster(frame, recipe)
    assert forecaster.booster is None and not forecaster.holt_winters_params
    forecaster.to_files(tmp_path)
    forecast = load_forecaster(tmp_path).predict(frame)

    assert list(forecast.columns) == list(FORECAST_COLUMNS)
    assert sorted(forecast["series_id"].unique()) == ["s0", "s1"]
    values = frame.set_index(["series_id", "month"])["y"]
    newest = frame["month"].max()
    for row in forecast.itertuples():
        years_back = -(-row.horizon // 12)
        source = row.month - pd.DateOffset(years=years_back)
        if row.series_id == "s1" and source == gap_month:  # the gap: the newest value
            assert row.forecast == values[("s1", newest)]
        else:
            assert row.forecast == values[(row.series_id, source)]
    assert forecast[["forecast_xgb", "forecast_holt_winters", "forecast_theta"]].isna().all().all()


def test_a_feature_added_after_training_leaves_the_trained_model_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = history()
    forecaster = fit_forecaster(frame, SMALL)
    before = forecaster.predict(frame)

    def with_new_feature(*args: object, **kwargs: object) -> features.DesignRows:
        rows = features.design_rows(*args, **kwargs)  # type: ignore[arg-type]
        added = np.full((len(rows.level), 1), 7.0)
        return dataclasses.replace(rows, features=np.hstack([rows.features, added]))

    # The code gains a feature (models/features.py) after the champion was trained.
    monkeypatch.setattr(forecaster_module, "FEATURE_NAMES", (*features.FEATURE_NAMES, "new"))
    monkeypatch.setattr(forecaster_module, "design_rows", with_new_feature)
    pd.testing.assert_frame_equal(forecaster.predict(frame), before)


def test_a_model_needing_a_feature_the_code_no_longer_builds_names_it() -> None:
    frame = history()
    forecaster = fit_forecaster(frame, SMALL)
    renamed = (*features.FEATURE_NAMES[:-1], "retired_feature")
    stale = dataclasses.replace(forecaster, feature_names=renamed)
    with pytest.raises(FeatureMismatchError, match=r"\['retired_feature'\].*full_retrain"):
        stale.predict(frame)


def with_new_series(frame: pd.DataFrame, months: int) -> pd.DataFrame:
    """``frame`` plus a series launched ``months`` months before its end (a new product)."""
    newest = frame["month"].max()
    index = pd.date_range(end=newest, periods=months, freq="MS")
    young = pd.DataFrame({"series_id": "new", "month": index, "y": 30.0 + np.arange(months)})
    return pd.concat([frame, young], ignore_index=True)


@pytest.mark.parametrize("months", [1, 5, 23, forecaster_module.YOUNG_MONTHS - 1])
def test_a_new_series_gets_its_level_moved_by_the_segments_forecast(
    tmp_path: Path, months: int
) -> None:
    frame = history()
    # The champion was trained (and saved) before the series existed.
    fit_forecaster(frame, SMALL).to_files(tmp_path)
    champion = load_forecaster(tmp_path)
    extended = with_new_series(frame, months)
    forecast = champion.predict(extended).set_index(["series_id", "horizon"])

    # Its level: the mean log of its newest min(months, 12) months; its moves: the mean of
    # the mature active series' forecasts (s0, s1) relative to their own level then.
    wide = extended.pivot(index="month", columns="series_id", values="y")
    recent = np.log1p(wide.tail(min(months, 12)))
    shape = np.mean(
        [np.log1p(forecast.loc[s, "forecast"].to_numpy()) - recent[s].mean() for s in ("s0", "s1")],
        axis=0,
    )
    expected = np.expm1(recent["new"].mean() + shape)
    np.testing.assert_allclose(forecast.loc["new", "forecast"].to_numpy(), expected, rtol=1e-9)
    assert forecast.loc["new", "forecast_holt_winters"].isna().all()  # too short for it
    # The mature series are forecast exactly as without the new one.
    alone = champion.predict(frame).set_index(["series_id", "horizon"])
    pd.testing.assert_frame_equal(forecast.drop(index="new"), alone)


def test_long_series_are_untouched_by_the_young_series_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = with_new_series(history(), 4)
    forecaster = fit_forecaster(history(), SMALL)
    with_rule = forecaster.predict(frame)
    monkeypatch.setattr(forecaster_module, "young_series_log", lambda *args: args[-1])
    without = forecaster.predict(frame)
    mature = with_rule["series_id"] != "new"
    pd.testing.assert_frame_equal(with_rule[mature], without[mature])
    assert not np.allclose(
        with_rule.loc[~mature, "forecast"].to_numpy(), without.loc[~mature, "forecast"].to_numpy()
    )


def test_a_segment_of_young_series_only_keeps_the_models_forecast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = history(months=35)  # every series too short for the statistical members
    forecaster = fit_forecaster(frame, SMALL)
    forecast = forecaster.predict(frame)
    assert forecast["forecast_holt_winters"].isna().all()
    assert forecast["forecast"].notna().all()
    # No mature series to lend a shape: the forecast is what it was without the rule.
    monkeypatch.setattr(forecaster_module, "young_series_log", lambda *args: args[-1])
    pd.testing.assert_frame_equal(forecast, forecaster.predict(frame))


def with_launched_series(frame: pd.DataFrame, months: int, before: float | None) -> pd.DataFrame:
    """``frame`` plus a series written as ``before`` (0: zeros, None: gaps) until it launched
    ``months`` months before the end, at ~600 a month (PBS writes zeros before a launch)."""
    index = pd.date_range(frame["month"].min(), frame["month"].max(), freq="MS")
    y = np.full(len(index), np.nan if before is None else before)
    y[-months:] = 600.0 + 10 * np.arange(months)
    launched = pd.DataFrame({"series_id": "launched", "month": index, "y": y}).dropna()
    return pd.concat([frame, launched], ignore_index=True)


@pytest.mark.parametrize("months", [3, 9, forecaster_module.YOUNG_MONTHS - 1])
def test_a_series_launched_after_zeros_is_forecast_by_its_newest_value(
    months: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = with_launched_series(history(), months, before=0.0)
    forecaster = fit_forecaster(frame, SMALL)

    forecast = forecaster.predict(frame).set_index(["series_id", "horizon"])

    newest = 600.0 + 10 * (months - 1)
    np.testing.assert_allclose(forecast.loc["launched", "forecast"], newest, rtol=1e-12)
    # Every other series is forecast as without the rule.
    monkeypatch.setattr(forecaster_module, "launched_series_log", lambda *args: args[-1])
    without = forecaster.predict(frame).set_index(["series_id", "horizon"])
    pd.testing.assert_frame_equal(forecast.drop(index="launched"), without.drop(index="launched"))
    assert not np.allclose(without.loc["launched", "forecast"], newest)


def test_a_series_launched_after_zeros_long_ago_is_forecast_by_the_model() -> None:
    months = forecaster_module.YOUNG_MONTHS
    frame = with_launched_series(history(), months, before=0.0)
    forecaster = fit_forecaster(frame, SMALL)
    forecast = forecaster.predict(frame).set_index(["series_id", "horizon"])
    assert not np.allclose(forecast.loc["launched", "forecast"], 600.0 + 10 * (months - 1))
    assert forecast.loc["launched", "forecast_holt_winters"].notna().all()


def test_a_recent_launch_lends_no_shape_to_a_young_series() -> None:
    # A segment of two mature series (s0, s1), one launched after zeros 9 months ago (old
    # by its observed months) and one new series observed in 5 months.
    frame = with_new_series(with_launched_series(history(), 9, before=0.0), 5)
    forecaster = fit_forecaster(frame, SMALL)

    forecast = forecaster.predict(frame).set_index(["series_id", "horizon"])

    # The young series moves as the mature series s0 and s1 are forecast to move, not as
    # the model extrapolates the launch (zeros, then ~600 and rising).
    wide = frame.pivot(index="month", columns="series_id", values="y")
    recent = np.log1p(wide.tail(5))
    shape = np.mean(
        [np.log1p(forecast.loc[s, "forecast"].to_numpy()) - recent[s].mean() for s in ("s0", "s1")],
        axis=0,
    )
    expected = np.expm1(recent["new"].mean() + shape)
    np.testing.assert_allclose(forecast.loc["new", "forecast"].to_numpy(), expected, rtol=1e-9)
