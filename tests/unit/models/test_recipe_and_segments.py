"""Recipe round trips and the --segments parameter."""

from __future__ import annotations

import json

import pytest

from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.segment_data import SegmentSelectionError, parse_segments


def test_recipe_json_round_trip_and_fingerprint() -> None:
    recipe = Recipe(horizon=6).with_overrides(xgb_params={"n_estimators": 10})
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    assert again.xgb_params["n_estimators"] == 10
    assert again.xgb_params["max_depth"] == 3
    assert again.fingerprint() == recipe.fingerprint() != Recipe().fingerprint()


def test_recipe_stored_with_the_old_booster_settings_keeps_them() -> None:
    stored = json.loads(Recipe().to_json())
    stored["xgb_params"].update(n_estimators=200, max_depth=5, learning_rate=0.05)
    old = Recipe.from_json(json.dumps(stored))
    assert (old.xgb_params["n_estimators"], old.xgb_params["max_depth"]) == (200, 5)
    assert Recipe().xgb_params["n_estimators"] == 100
    assert old.fingerprint() != Recipe().fingerprint()


def test_recipe_stored_before_theta_means_holt_winters_alone() -> None:
    legacy = '{"horizon": 12, "xgb_weight": 0.5}'
    assert Recipe.from_json(legacy).theta_weight == 0.0
    assert Recipe().theta_weight == 0.5


def test_recipe_stored_before_methods_existed_is_the_combination() -> None:
    assert Recipe.from_json('{"horizon": 12}').method == "combination"
    naive = Recipe(method="seasonal_naive")
    assert naive.is_seasonal_naive and not Recipe().is_seasonal_naive
    assert Recipe.from_json(naive.to_json()) == naive


@pytest.mark.parametrize(
    "field, value",
    [
        ("horizon", 0),
        ("xgb_weight", 1.5),
        ("theta_weight", -0.1),
        ("train_window_months", 3),
        ("method", "arima"),
    ],
)
def test_recipe_refuses_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        Recipe().with_overrides(**{field: value})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("all", None),
        (None, None),
        ("a,b , a", ("a", "b")),
        ('["x", "y"]', ("x", "y")),
        ("[]", ()),
    ],
)
def test_segments_parameter(text: str | None, expected: tuple[str, ...] | None) -> None:
    assert parse_segments(text) == expected


def test_segments_parameter_refuses_malformed_json() -> None:
    with pytest.raises(SegmentSelectionError, match="JSON"):
        parse_segments('["a", ')
    with pytest.raises(SegmentSelectionError, match="list of segment names"):
        parse_segments("[1, 2]")
