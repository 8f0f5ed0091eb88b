"""Forecast intervals on the bundled real data: do 80 % intervals hold 80 % of the actuals?

The protocol of ACCURACY.md (aus_retail, 13 rolling origins 2016-12 .. 2017-12, h = 1..12,
the 148 series observed in the last month). At each origin every segment's model is made as
the train task makes it (``segment_training.fit_and_backtest``: the fit on months <= origin
and the interval from its own K-origin backtest, all before the origin), and the
seasonal-naive fallback's interval comes from each series' year-on-year changes. Reported:

- coverage: the share of actuals inside [forecast_lower, forecast_upper] (nominal 0.80),
  overall and per horizon;
- mean relative width: (upper - lower) / forecast;
- MSIS, the M4 competition's mean scaled interval score at this level (width plus
  2 / alpha times each miss, over the series' in-sample seasonal scale; lower is better).

Usage:
    .venv/bin/python benchmarks/interval_coverage.py [--jobs 2] [--origins 13]

Writes benchmarks/results/interval_coverage.json (figures + machine).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed

from demand_forecasting.models import intervals
from demand_forecasting.models.forecaster import fit_forecaster
from demand_forecasting.models.metrics import seasonal_scale
from demand_forecasting.models.panel import panel_from_history
from demand_forecasting.models.recipe import SEASONAL_NAIVE, Recipe
from demand_forecasting.models.segment_training import fit_and_backtest
from machine_info import machine
from model_accuracy import LAST_ORIGIN, load_aus_retail

HERE = Path(__file__).resolve().parent
HORIZON = 12
#: The train task's default K (bundle variable backtest_origins).
BACKTEST_ORIGINS = 6
BOUNDS = ["forecast", "forecast_lower", "forecast_upper"]


def forecast_segment(history: pd.DataFrame, origin: pd.Timestamp, recipe: Recipe) -> pd.DataFrame:
    """The model's and seasonal naive's forecasts with intervals, made at ``origin``."""
    warnings.filterwarnings("ignore")
    panel = panel_from_history(history).until(origin)
    forecaster, _, _ = fit_and_backtest(panel, recipe, BACKTEST_ORIGINS)
    model = forecaster.predict(panel)[["series_id", "origin", "horizon", "month", *BOUNDS]]
    naive_recipe = Recipe(horizon=recipe.horizon, method=SEASONAL_NAIVE)
    naive = fit_forecaster(panel, naive_recipe).predict(panel)[["series_id", "horizon", *BOUNDS]]
    scale = pd.Series(seasonal_scale(panel.values), index=list(panel.series), name="scale")
    return model.merge(
        naive.rename(columns={c: f"naive_{c}" for c in BOUNDS}), on=["series_id", "horizon"]
    ).merge(scale, left_on="series_id", right_index=True)


def interval_figures(frame: pd.DataFrame, prefix: str = "") -> dict[str, object]:
    """Coverage, width and MSIS of one method's intervals over the rows that have one."""
    lower, upper = frame[f"{prefix}forecast_lower"], frame[f"{prefix}forecast_upper"]
    has = lower.notna() & upper.notna()
    rows = frame[has]
    lo, hi, y = rows[f"{prefix}forecast_lower"], rows[f"{prefix}forecast_upper"], rows["actual"]
    inside = (y >= lo) & (y <= hi)
    alpha = 1.0 - intervals.LEVEL
    score = (hi - lo) + 2 / alpha * ((lo - y).clip(lower=0) + (y - hi).clip(lower=0))
    by_horizon = inside.groupby(rows["horizon"]).mean()
    return {
        "rows_with_interval": int(has.sum()),
        "rows": len(frame),
        "coverage": round(float(inside.mean()), 3),
        "coverage_by_horizon": {int(h): round(float(c), 3) for h, c in by_horizon.items()},
        "mean_relative_width": round(float(((hi - lo) / rows[f"{prefix}forecast"]).mean()), 3),
        "msis": round(float((score / rows["scale"]).groupby(rows["series_id"]).mean().mean()), 3),
    }


def main() -> None:
    """Run the protocol and print coverage per method."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--origins", type=int, default=13, help="rolling origins")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    start_machine = machine()
    data = load_aus_retail()
    recipe = Recipe(horizon=HORIZON)
    origins = [LAST_ORIGIN - pd.DateOffset(months=k) for k in range(args.origins - 1, -1, -1)]
    started = time.perf_counter()
    tasks = [
        (frame[["series_id", "month", "y"]], origin)
        for _, frame in data.groupby("segment")
        for origin in origins
    ]
    frames = Parallel(n_jobs=args.jobs)(
        delayed(forecast_segment)(history, origin, recipe) for history, origin in tasks
    )
    wall = time.perf_counter() - started
    forecasts = pd.concat(frames, ignore_index=True)
    actual = data[["series_id", "month", "y"]].rename(columns={"y": "actual"})
    forecasts = forecasts.merge(actual, on=["series_id", "month"], how="left")
    scorable = data.groupby("series_id")["month"].max() == data["month"].max()
    forecasts = forecasts[forecasts["series_id"].isin(scorable[scorable].index)]
    forecasts = forecasts[forecasts["actual"].notna()]

    result = {
        "protocol": {
            "origins": [o.strftime("%Y-%m") for o in origins],
            "horizon": HORIZON,
            "backtest_origins": BACKTEST_ORIGINS,
            "level": intervals.LEVEL,
            "series_scored": int(forecasts["series_id"].nunique()),
        },
        "segment models (backtest interval)": interval_figures(forecasts),
        "seasonal naive (year-on-year interval)": interval_figures(forecasts, "naive_"),
        "seconds": {"wall": round(wall, 1), "jobs": args.jobs, "fits": len(tasks)},
        "machine": {"start": start_machine, "end": machine()},
    }
    (HERE / "results" / "interval_coverage.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{intervals.LEVEL:.0%} intervals, {len(origins)} origins, h = 1..{HORIZON}")
    for label in ("segment models (backtest interval)", "seasonal naive (year-on-year interval)"):
        figures = result[label]
        assert isinstance(figures, dict)
        print(
            f"  {label:40s} coverage {figures['coverage']:.3f}  width "
            f"{figures['mean_relative_width']:.3f}  MSIS {figures['msis']:.3f}  "
            f"({figures['rows_with_interval']} of {figures['rows']} rows)"
        )
        print(f"    by horizon: {figures['coverage_by_horizon']}")
    print(f"  {len(tasks)} fits + backtests in {wall:.0f}s wall, {args.jobs} jobs")


if __name__ == "__main__":
    main()
