"""Planned covariates: their features, no leakage, plans required, stand-ins marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.models import holt_winters
from demand_forecasting.models.covariates import MissingPlanError
from demand_forecasting.models.features import FEATURE_NAMES, design_rows, feature_names
from demand_forecasting.models.forecaster import fit_forecaster, load_forecaster
from demand_forecasting.models.panel import HistoryError, panel_from_history
from demand_forecasting.models.recipe import Recipe, default_recipe

COVARIATES = ("price", "promo")
RECIPE = Recipe(horizon=4, covariates=COVARIATES).with_overrides(
    xgb_params={"n_estimators": 80, "learning_rate": 0.2}
)


def promoted_history(months: int = 84, series: int = 6, seed: int = 5) -> pd.DataFrame:
    """Seasonal unit sales that rise 80 % in promotion months, which cut the price 20 %."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2012-01-01", periods=months, freq="MS")
    t = np.arange(months)
    frames = []
    for s in range(series):
        promo = (rng.random(months) < 0.25).astype(float)
        price = (2.0 + s) * np.where(promo == 1, 0.8, 1.0)
        y = (40.0 * (s + 1)) * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + s)) * (1 + 0.8 * promo)
        y *= np.exp(rng.normal(0, 0.02, months))
        frames.append(
            pd.DataFrame(
                {"series_id": f"s{s}", "month": index, "y": y, "price": price, "promo": promo}
            )
        )
    return pd.concat(frames, ignore_index=True)


def plans_for(frame: pd.DataFrame, horizon: int, promo: float) -> pd.DataFrame:
    """Every series' plan for the ``horizon`` months after ``frame``: promo or not."""
    end = frame["month"].max()
    months = pd.date_range(end + pd.DateOffset(months=1), periods=horizon, freq="MS")
    base = frame[frame["month"] == end].set_index("series_id")["price"]
    return pd.DataFrame(
        [
            {"series_id": s, "month": m, "price": base[s] * (0.8 if promo else 1.0), "promo": promo}
            for s in sorted(base.index)
            for m in months
        ]
    )


def test_covariate_features_are_the_value_at_the_target_month_and_over_its_usual_level() -> None:
    panel = panel_from_history(promoted_history(), COVARIATES)
    paths, _ = holt_winters.panel_paths(panel.log_values, 3)
    rows = design_rows(panel, np.array([40]), 3, paths, COVARIATES)
    names = feature_names(COVARIATES)
    assert names[-4:] == ("plan_price", "plan_price_rel", "plan_promo", "plan_promo_rel")
    assert rows.features.shape[1] == len(names) == len(FEATURE_NAMES) + 4
    price = panel.covariates["price"]
    for h in (1, 3):
        pick = (rows.series == 2) & (rows.horizon == h)
        at_target = rows.features[pick, names.index("plan_price")][0]
        relative = rows.features[pick, names.index("plan_price_rel")][0]
        assert at_target == price[40 + h, 2]
        assert np.isclose(relative, price[40 + h, 2] / price[29:41, 2].mean())


def test_nothing_after_the_origin_leaks_in_but_the_covariates_at_the_target_month() -> None:
    frame = promoted_history()
    origin_row = 50
    origin = pd.Timestamp(sorted(frame["month"].unique())[origin_row])
    later = frame["month"] > origin
    changed = frame.copy()
    changed.loc[later, "y"] *= 7.0  # the target itself, after the origin
    target_months = frame["month"].isin(pd.date_range(origin, periods=4, freq="MS")[1:])
    # covariates after the origin at months no row targets (h = 1..3 reach 3 months)
    far = later & ~target_months
    changed.loc[far, "price"] *= 3.0
    changed.loc[far, "promo"] = 1 - changed.loc[far, "promo"]
    built = []
    for history in (frame, changed):
        cut = panel_from_history(history, COVARIATES).until(origin)
        paths, _ = holt_winters.panel_paths(cut.log_values, 3)
        built.append(design_rows(cut, np.array([origin_row]), 3, paths, COVARIATES))
    np.testing.assert_allclose(built[0].features, built[1].features, equal_nan=True)
    # ...while the covariates at the target months do reach the rows (the planned values)
    moved = frame.copy()
    moved.loc[target_months, "price"] *= 2.0
    cut = panel_from_history(moved, COVARIATES).until(origin)
    paths, _ = holt_winters.panel_paths(cut.log_values, 3)
    rows = design_rows(cut, np.array([origin_row]), 3, paths, COVARIATES)
    column = feature_names(COVARIATES).index("plan_price")
    np.testing.assert_allclose(rows.features[:, column], 2.0 * built[0].features[:, column])


def test_a_model_with_planned_covariates_follows_the_promotion_plan(tmp_path: Path) -> None:
    frame = promoted_history()
    model = fit_forecaster(frame, RECIPE)
    assert model.feature_names == feature_names(COVARIATES)
    promoted = model.predict(panel_from_history(frame, COVARIATES, plans_for(frame, 4, 1.0)))
    plain = model.predict(panel_from_history(frame, COVARIATES, plans_for(frame, 4, 0.0)))
    lift = promoted["forecast_xgb"] / plain["forecast_xgb"]
    assert lift.min() > 1.3, lift.describe()  # the data's lift is 1.8
    assert not promoted["plan_missing"].any()
    # saved and loaded, it reads the same plans the same way
    model.to_files(tmp_path / "model")
    loaded = load_forecaster(tmp_path / "model")
    assert loaded.recipe.covariates == COVARIATES
    again = loaded.predict(panel_from_history(frame, COVARIATES, plans_for(frame, 4, 1.0)))
    pd.testing.assert_frame_equal(again, promoted)


def test_a_model_with_planned_covariates_refuses_to_forecast_without_plans() -> None:
    frame = promoted_history()
    model = fit_forecaster(frame, RECIPE)
    with pytest.raises(MissingPlanError, match=r"no column \['price', 'promo'\].*is_plan"):
        model.predict(frame[["series_id", "month", "y"]])
    too_short = plans_for(frame, 2, 0.0)  # 2 of the 4 months forecast
    with pytest.raises(MissingPlanError, match=r"no plan rows for all 4 months after 2018-12"):
        model.predict(panel_from_history(frame, COVARIATES, too_short))


def test_a_missing_plan_gets_the_series_median_and_its_rows_are_marked() -> None:
    frame = promoted_history()
    model = fit_forecaster(frame, RECIPE)
    plans = plans_for(frame, 4, 0.0)
    hole = (plans["series_id"] == "s1") & (plans["month"] == plans["month"].max())
    forecast = model.predict(panel_from_history(frame, COVARIATES, plans[~hole]))
    marked = forecast[forecast["plan_missing"]]
    assert list(zip(marked["series_id"], marked["horizon"], strict=True)) == [("s1", 4)]
    assert forecast["forecast"].notna().all() and len(forecast) == 6 * 4
    # the stand-in is the series' median over the 12 months up to the origin
    recent = frame[(frame["series_id"] == "s1")].sort_values("month").tail(12)
    standing_in = plans[~hole].copy()
    extra = plans[hole].assign(price=recent["price"].median(), promo=recent["promo"].median())
    explicit = model.predict(panel_from_history(frame, COVARIATES, pd.concat([standing_in, extra])))
    np.testing.assert_allclose(explicit["forecast"], forecast["forecast"])


def test_a_plan_for_a_month_of_the_history_is_refused() -> None:
    frame = promoted_history()
    plans = plans_for(frame, 2, 0.0).assign(month=frame["month"].max())
    with pytest.raises(HistoryError, match="is not after the history's newest month 2018-12"):
        panel_from_history(frame, COVARIATES, plans)


def test_recipes_without_covariates_keep_their_stored_text() -> None:
    plain = Recipe(horizon=12)
    assert "covariates" not in plain.to_json()
    with_plans = Recipe(horizon=12, covariates=COVARIATES)
    assert Recipe.from_json(with_plans.to_json()) == with_plans
    assert with_plans.fingerprint() != plain.fingerprint()


def test_the_train_tasks_recipe_uses_xgboost_alone_only_with_planned_covariates() -> None:
    assert default_recipe(12) == Recipe(horizon=12)  # aus_retail, pbs: unchanged
    with_plans = default_recipe(12, COVARIATES)
    assert with_plans.xgb_weight == 1.0 and with_plans.covariates == COVARIATES
