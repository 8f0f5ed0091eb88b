"""Rolling-origin backtests: refit a recipe at each origin and forecast what came next.

At origin ``o`` a method sees only months ``<= o``; it forecasts h = 1..H and is scored on
the actuals that followed. Candidate, champion and seasonal naive go through the same
origins and the same series, so their figures compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from demand_forecasting.models.baseline import seasonal_naive
from demand_forecasting.models.forecaster import fit_forecaster
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
            skipped).
        horizon: months ahead scored.

    Returns:
        Columns ``series_id, origin, horizon, month, actual, scale`` plus one forecast column
        per method and :data:`NAIVE`; one row per series forecast at an origin and horizon.
    """
    panel = history if isinstance(history, Panel) else panel_from_history(history)
    wide = pd.DataFrame(panel.values, index=panel.months, columns=list(panel.series))
    stacked: pd.Series = wide.stack(future_stack=True)  # type: ignore[assignment]
    actual = stacked.rename("actual").rename_axis(["month", "series_id"])
    frames = []
    for origin in origins:
        position = int(panel.months.get_indexer(pd.DatetimeIndex([origin]))[0])
        if position < 24:  # not in the panel (-1), or too little history before it
            continue
        cut = panel.until(origin)
        frame = seasonal_naive(cut, horizon).rename(columns={"forecast": NAIVE})
        fitted: dict[str, pd.DataFrame] = {}
        for name, recipe in recipes.items():
            key = recipe.to_json()
            if key not in fitted:
                fitted[key] = fit_forecaster(cut, recipe).predict(cut)[
                    ["series_id", "horizon", "forecast"]
                ]
            frame = frame.merge(
                fitted[key].rename(columns={"forecast": name}),
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
