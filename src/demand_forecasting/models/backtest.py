"""Rolling-origin backtests: forecast from each of K origins what came next.

At origin ``o`` a method sees only months ``<= o``; it forecasts h = 1..H and is scored on
the actuals that followed. Candidate, champion and seasonal naive go through the same
origins and the same series, so their figures compare like with like.

Each recipe is fitted once, on the months up to the *oldest* origin, and that model
forecasts from every origin with the history known there (rolling origin without
re-estimation, Tashman 2000). That is how a champion serves in production: trained once,
then forecasting month after month from new data until drift retrains it, so the backtest
measures a model of the age a champion reaches. It is also cheap (one fit and K predictions
per recipe), which lets K be a year of origins and the gate rest on ~K x H x series errors
instead of a handful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from demand_forecasting.models.baseline import seasonal_naive
from demand_forecasting.models.forecaster import SegmentForecaster, fit_forecaster
from demand_forecasting.models.metrics import seasonal_scale
from demand_forecasting.models.panel import Panel, panel_from_history
from demand_forecasting.models.recipe import Recipe

NAIVE = "seasonal_naive"


def backtest_origins(end: pd.Timestamp, horizon: int, count: int) -> list[pd.Timestamp]:
    """The ``count`` newest origins whose whole horizon has actuals by ``end``.

    Raises:
        ValueError: ``count`` is below 1.
    """
    if count < 1:
        raise ValueError(
            f"backtest origins={count}: at least one origin is needed "
            "(bundle variable backtest_origins)"
        )
    last = pd.Timestamp(end) - pd.DateOffset(months=horizon)
    return [last - pd.DateOffset(months=k) for k in range(count - 1, -1, -1)]


def backtest(
    history: pd.DataFrame | Panel,
    recipes: Mapping[str, Recipe],
    origins: Sequence[pd.Timestamp],
    horizon: int,
) -> pd.DataFrame:
    """Forecasts of each recipe and of seasonal naive at each origin, with the actuals.

    Args:
        history: the segment's long history frame (or Panel).
        recipes: method name -> recipe (e.g. ``candidate``, ``champion``); recipes that are
            equal are fitted once.
        origins: months to stand at (origins without 24 months of history before them are
            skipped); each recipe is fitted on the months up to the oldest usable one.
        horizon: months ahead scored.

    Returns:
        Columns ``series_id, origin, horizon, month, actual, scale`` plus one forecast column
        per method and :data:`NAIVE`; one row per series forecast at an origin and horizon.
    """
    panel = history if isinstance(history, Panel) else panel_from_history(history)
    wide = pd.DataFrame(panel.values, index=panel.months, columns=list(panel.series))
    stacked: pd.Series = wide.stack(future_stack=True)  # type: ignore[assignment]
    actual = stacked.rename("actual").rename_axis(["month", "series_id"])
    positions = panel.months.get_indexer(pd.DatetimeIndex(list(origins)))
    # Not in the panel (-1), or too little history before it.
    usable = sorted(pd.Timestamp(panel.months[int(p)]) for p in positions if p >= 24)
    fitted: dict[str, SegmentForecaster] = {}
    if usable:
        oldest = panel.until(usable[0])
        for recipe in recipes.values():
            key = recipe.to_json()
            if key not in fitted:
                fitted[key] = fit_forecaster(oldest, recipe)
    frames = []
    for origin in usable:
        cut = panel.until(origin)
        frame = seasonal_naive(cut, horizon).rename(columns={"forecast": NAIVE})
        predicted = {
            key: model.predict(cut)[["series_id", "horizon", "forecast"]]
            for key, model in fitted.items()
        }
        for name, recipe in recipes.items():
            frame = frame.merge(
                predicted[recipe.to_json()].rename(columns={"forecast": name}),
                on=["series_id", "horizon"],
                how="left",
            )
        scale = pd.Series(seasonal_scale(cut.values), index=list(cut.series), name="scale")
        frame = frame.merge(scale, left_on="series_id", right_index=True, how="left")
        frames.append(frame)
    if not frames:
        columns = ["series_id", "origin", "horizon", "month", NAIVE, *recipes, "scale"]
        return pd.DataFrame(columns=[*columns, "actual"])
    result = pd.concat(frames, ignore_index=True)
    result = result.merge(actual.reset_index(), on=["month", "series_id"], how="left")
    result["actual"] = result["actual"].astype(float)
    return result


def comparable(frame: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """The rows where every method has a forecast and the actual is known."""
    return frame.dropna(subset=["actual", *methods])
