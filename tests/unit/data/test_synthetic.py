"""The synthetic generator: deterministic, and its series do have trend, season, promos, price."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from demand_forecasting.data.config import load_dataset_config
from demand_forecasting.data.synthetic import month_frame, series_parameters, synthetic_months


def _history(series: int, seed: int, months: int) -> pd.DataFrame:
    config = load_dataset_config("synthetic")
    first = date(2000, 1, 1)
    last = date(2000 + (months - 1) // 12, (months - 1) % 12 + 1, 1)
    return pd.concat(frame for _, frame in synthetic_months(config, series, seed, first, last))


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    config = load_dataset_config("synthetic")
    params = series_parameters(5, seed=3)
    a = month_frame(config, params, 3, date(2000, 1, 1), date(2001, 6, 1))
    b = month_frame(config, series_parameters(5, seed=3), 3, date(2000, 1, 1), date(2001, 6, 1))
    c = month_frame(config, series_parameters(5, seed=4), 4, date(2000, 1, 1), date(2001, 6, 1))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_series_carry_segments_promotions_and_price() -> None:
    frame = _history(series=64, seed=1, months=48)
    config = load_dataset_config("synthetic")
    assert set(frame["Region"]) == set(config.known_values["region"])
    assert set(frame["Category"]) == set(config.known_values["category"])
    assert frame.groupby("Product")[["Region", "Category"]].nunique().max().max() == 1
    units = frame["Units"].astype(float)
    promo = frame["Promo"] == "1"
    assert 0.02 < promo.mean() < 0.2
    # Promotions cut the price and lift the units of the same product.
    relative = units / frame.groupby("Product")["Units"].transform(lambda u: u.astype(float).mean())
    assert relative[promo].mean() > relative[~promo].mean()
    price = frame["Price"].astype(float)
    relative_price = price / frame.groupby("Product")["Price"].transform(
        lambda p: p.astype(float).mean()
    )
    assert relative_price[promo].mean() < relative_price[~promo].mean()


def test_series_are_seasonal() -> None:
    frame = _history(series=8, seed=2, months=60)
    frame["month"] = frame["Period"].str[-2:].astype(int)
    units = frame.assign(u=frame["Units"].astype(float))
    # Within each product, mean units differ across calendar months by far more than noise.
    spread = units.groupby(["Product", "month"])["u"].mean().groupby("Product").agg(np.ptp)
    level = units.groupby("Product")["u"].mean()
    assert (spread / level).median() > 0.1
