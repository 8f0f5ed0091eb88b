"""Synthetic monthly unit sales for scale tests: N series with trend, seasonality, price, promos.

Deterministic by seed: series parameters come from ``seed`` alone and each month's noise from
``(seed, month index)``, so landing month by month gives the same rows as landing all at once.
The frames are in the landing format of ``conf/datasets/synthetic.yml`` (its column names, its
month format, numbers as text). Not for accuracy claims: the bundled real data is for that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from demand_forecasting.data.config import DatasetConfig, DatasetConfigError, month_strftime

#: The landing header the generator writes (the ``rename`` keys of synthetic.yml).
LANDING_COLUMNS = ("Region", "Category", "Product", "Period", "Units", "Price", "Promo")


@dataclass(frozen=True)
class SeriesParameters:
    """Per-series parameters, one array element per series."""

    level: np.ndarray
    trend: np.ndarray
    season_amplitude: np.ndarray
    season_phase: np.ndarray
    base_price: np.ndarray
    inflation: np.ndarray
    elasticity: np.ndarray
    promo_rate: np.ndarray
    promo_lift: np.ndarray


def series_parameters(series: int, seed: int) -> SeriesParameters:
    """Draw the parameters of ``series`` series from ``seed`` (same seed, same series)."""
    rng = np.random.default_rng(seed)
    return SeriesParameters(
        level=np.exp(rng.normal(4.0, 1.0, series)),
        trend=rng.normal(0.002, 0.002, series),
        season_amplitude=rng.uniform(0.05, 0.35, series),
        season_phase=rng.uniform(0.0, 2 * np.pi, series),
        base_price=np.exp(rng.normal(1.5, 0.6, series)),
        inflation=rng.normal(0.002, 0.001, series),
        elasticity=rng.uniform(-2.0, -0.5, series),
        promo_rate=rng.uniform(0.02, 0.15, series),
        promo_lift=rng.uniform(0.1, 0.6, series),
    )


def month_index(first: date, month: date) -> int:
    """Months from ``first`` to ``month`` (0 for the first month)."""
    return (month.year - first.year) * 12 + month.month - first.month


def month_frame(
    config: DatasetConfig,
    params: SeriesParameters,
    seed: int,
    first_month: date,
    month: date,
) -> pd.DataFrame:
    """One month of every series, as a landing file would carry it.

    Args:
        config: the synthetic dataset config (its segment values and month format are used).
        params: from :func:`series_parameters`.
        seed: the same seed as ``params``; with the month index it seeds the month's noise.
        first_month: month index 0 (trend and inflation start there).
        month: the month to generate (first of month).
    """
    if tuple(config.landing_columns) != LANDING_COLUMNS:
        raise DatasetConfigError(
            f"dataset {config.name!r}: the synthetic generator writes {LANDING_COLUMNS}, but the "
            f"config's rename lists {config.landing_columns}"
        )
    n = len(params.level)
    t = month_index(first_month, month)
    rng = np.random.default_rng([seed, t + 1_000_000])
    promo = rng.random(n) < params.promo_rate
    list_price = params.base_price * np.exp(params.inflation * t)
    price = list_price * np.where(promo, 0.8, 1.0) * rng.lognormal(0.0, 0.02, n)
    angle = 2 * np.pi * month.month / 12 + params.season_phase
    season = 1 + params.season_amplitude * np.sin(angle)
    units = (
        params.level
        * np.exp(params.trend * t)
        * season
        * (price / list_price) ** params.elasticity
        * np.where(promo, 1 + params.promo_lift, 1.0)
        * rng.lognormal(0.0, 0.08, n)
    )
    regions = config.known_values["region"]
    categories = config.known_values["category"]
    index = np.arange(n)
    return pd.DataFrame(
        {
            "Region": np.asarray(regions)[index % len(regions)],
            "Category": np.asarray(categories)[(index // len(regions)) % len(categories)],
            "Product": [f"P{i:06d}" for i in index],
            "Period": month.strftime(month_strftime(config.month_format)),
            "Units": np.round(units).astype(np.int64).astype(str),
            "Price": np.char.mod("%.2f", price),
            "Promo": promo.astype(np.int8).astype(str),
        }
    )


def synthetic_months(
    config: DatasetConfig, series: int, seed: int, first_month: date, last_month: date
) -> Iterator[tuple[date, pd.DataFrame]]:
    """Yield ``(month, frame)`` from ``first_month`` to ``last_month`` inclusive."""
    params = series_parameters(series, seed)
    month = first_month
    while month <= last_month:
        yield month, month_frame(config, params, seed, first_month, month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
