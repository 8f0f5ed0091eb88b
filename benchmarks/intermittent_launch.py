"""Forecasts of series launched after zeros (PBS, real data).

PBS writes zeros, not gaps, before a drug group starts. A series' start is its first
non-zero value after its leading zeros or after a run of at least ``DORMANT_MONTHS`` zero
months (``Panel.start_rows``). For every such launch, at k = 1, 2, 3, 6, 9, 12, 18, 24, 30
months after its start, the segment's model is fitted at that origin (on every series of
the segment, as a monthly retrain does) and forecasts h = 1..12. Methods on the same rows:

- ``champion before``: the members' combination, as ``predict`` made it before launches
  counted (the series was old by its observed months: Holt-Winters, Theta and XGBoost
  fitted over its zeros and its launch);
- ``champion now``: ``SegmentForecaster.predict`` (since this study: a series < 36 months
  since its launch after zeros is forecast by its newest value);
- ``segment shape``: the young-series rule (``young_series_log``) as if the series were
  young since its start: its mean log1p over its newest min(k, 12) months since the start
  plus the mean move the model forecasts for the segment's other series from those months;
- ``own level``: its mean log1p over its newest min(k, 12) months since the start, flat;
- ``last value``;
- ``seasonal naive before``: the value a year before (zeros before the launch; the newest
  value where it is a gap, as the fallback serves it);
- ``seasonal naive now``: the same, but the newest value where that month is before the
  start (``baseline.seasonal_naive``, the fallback).

Scores per k: WAPE (sum |e| / sum y) and the mean over launches of the per-launch relative
MAE (MAE / mean actual; MASE has no meaningful scale for a series that was zero). The
development window (origins up to 2004-12) chooses; ``--window later`` (origins 2005-01 ..
2007-06) reports once.

    .venv/bin/python benchmarks/intermittent_launch.py [--window development|later]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from demand_forecasting.models.forecaster import combine_logs, fit_forecaster
from demand_forecasting.models.panel import Panel, panel_from_history
from demand_forecasting.models.recipe import Recipe
from machine_info import machine
from pbs_data import load_pbs

HERE = Path(__file__).resolve().parent
HORIZON = 12
KS = (1, 2, 3, 6, 9, 12, 18, 24, 30)
WINDOWS = {
    "development": (pd.Timestamp("1991-01-01"), pd.Timestamp("2004-12-01")),
    "later": (pd.Timestamp("2005-01-01"), pd.Timestamp("2007-06-01")),
}
METHODS = (
    "champion before",
    "champion now",
    "segment shape",
    "own level",
    "last value",
    "seasonal naive before",
    "seasonal naive now",
)


def launches(panel: Panel) -> list[tuple[int, int]]:
    """(series column, start row) of the series that started after zeros."""
    observed = ~np.isnan(panel.values)
    first = np.argmax(observed, axis=0)
    start = panel.start_rows()
    return [(s, int(start[s])) for s in range(len(panel.series)) if start[s] > first[s]]


def forecast_launches(
    history: pd.DataFrame, origin: pd.Timestamp, cases: list[tuple[str, int]]
) -> pd.DataFrame:
    """Every method's forecasts of the launched series ``cases`` (id, k) from ``origin``."""
    warnings.filterwarnings("ignore")
    full = panel_from_history(history)
    panel = full.until(origin)
    recipe = Recipe(horizon=HORIZON)
    forecaster = fit_forecaster(panel, recipe)
    forecast = forecaster.predict(panel)
    # The same model, the months before each start as gaps: the young-series rule's shape.
    as_gaps = Panel(panel.months, panel.series, np.where(panel.not_started(), np.nan, panel.values))
    shaped = forecaster.predict(as_gaps)
    newest = len(panel.months) - 1
    rows = []
    for series_id, k in cases:
        s = panel.series.index(series_id)
        own = forecast[forecast["series_id"] == series_id].sort_values("horizon")
        if own.empty:
            continue
        logs = {
            m: np.log1p(own[f"forecast_{m}"].to_numpy(float))
            for m in ("xgb", "holt_winters", "theta")
        }
        statistical = combine_logs(logs["theta"], logs["holt_winters"], recipe.theta_weight)
        before = np.expm1(combine_logs(logs["xgb"], statistical, recipe.xgb_weight))
        level = np.log1p(panel.values[max(newest - k + 1, newest - 11) : newest + 1, s])
        h = np.arange(1, HORIZON + 1)
        source = newest + h - 12
        # A gap a year before: the newest value, as the fallback serves it.
        year_ago = np.where(
            np.isnan(panel.values[source, s]), panel.values[newest, s], panel.values[source, s]
        )
        start = newest - k + 1
        targets = np.arange(newest + 1, newest + 1 + HORIZON)
        actual = full.values[targets, s] if targets[-1] < len(full.months) else None
        if actual is None or np.isnan(actual).any():
            continue
        methods = {
            "champion before": before,
            "champion now": own["forecast"].to_numpy(float),
            "segment shape": shaped[shaped["series_id"] == series_id]
            .sort_values("horizon")["forecast"]
            .to_numpy(float),
            "own level": np.full(HORIZON, np.expm1(np.nanmean(level))),
            "last value": np.full(HORIZON, panel.values[newest, s]),
            "seasonal naive before": year_ago,
            "seasonal naive now": np.where(source < start, panel.values[newest, s], year_ago),
        }
        for name, values in methods.items():
            rows.append(
                {
                    "series_id": series_id,
                    "origin": origin,
                    "k": k,
                    "method": name,
                    "abs_error": float(np.abs(values - actual).sum()),
                    "actual": float(actual.sum()),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    """Forecast every launch at every k in the window; print WAPE and relative MAE per k."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", choices=sorted(WINDOWS), default="development")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--output", default="intermittent_launch.json", help="file in results/")
    args = parser.parse_args()
    started = time.perf_counter()
    start_machine = machine()
    first, last = WINDOWS[args.window]
    tasks = []
    for _, frame in load_pbs().groupby("segment"):
        history = frame[["series_id", "month", "y"]]
        panel = panel_from_history(history)
        by_origin: dict[pd.Timestamp, list[tuple[str, int]]] = {}
        for s, start in launches(panel):
            for k in KS:
                row = start + k - 1
                if row < 24 or row + HORIZON >= len(panel.months):
                    continue
                origin = pd.Timestamp(panel.months[row])
                if first <= origin <= last:
                    by_origin.setdefault(origin, []).append((panel.series[s], k))
        tasks += [(history, origin, cases) for origin, cases in by_origin.items()]
    frames = Parallel(n_jobs=args.jobs)(delayed(forecast_launches)(*task) for task in tasks)
    rows = pd.concat(frames, ignore_index=True)
    rows["relative_mae"] = rows["abs_error"] / rows["actual"].where(rows["actual"] > 0)
    table = rows.groupby(["k", "method"]).agg(
        wape=("abs_error", "sum"),
        actual=("actual", "sum"),
        relative_mae=("relative_mae", "mean"),
        launches=("series_id", "count"),
    )
    table["wape"] = table["wape"] / table["actual"]
    print(table[["wape", "relative_mae", "launches"]].unstack("method").round(3).to_string())
    overall = rows.groupby("method").agg(abs_error=("abs_error", "sum"), actual=("actual", "sum"))
    print((overall["abs_error"] / overall["actual"]).round(3).to_string())
    path = HERE / "results" / args.output
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[args.window] = {
        "per_k": {
            f"{k}": {
                m: {
                    "wape": round(float(r["wape"]), 4),
                    "relative_mae": round(float(r["relative_mae"]), 4),
                    "launches": int(r["launches"]),
                }
                for m, r in g.droplevel("k").iterrows()
            }
            for k, g in table.groupby(level="k")
        },
        "wape_all_k": (overall["abs_error"] / overall["actual"]).round(4).to_dict(),
        "cases": rows[rows["method"] == "champion now"][["series_id", "k"]]
        .astype(str)
        .agg(" k=".join, axis=1)
        .tolist(),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": start_machine,
    }
    path.write_text(json.dumps(saved, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
