"""Forecasts of young series (a new product in a segment whose model is already trained).

aus_retail, real data. A young series is simulated by cutting one series' history to its
last k months at an origin o: the segment's model is fitted at o on the segment's OTHER
series only (a truly new series was not in the champion's training data), then forecasts
h = 1..12 from a panel holding the others' full history and the young series' k months.
Every series of a segment with at least one other series is a young series in turn (the
4 that stop before the origins are not), at every origin and every k.

Methods compared on the same (series, origin, k, h) rows:

- ``champion before the young-series rule``: the members' combination as
  ``SegmentForecaster.predict`` shipped it before (recombined here from the member columns;
  for k < 36 Holt-Winters and Theta have too few months, so it is the XGBoost half alone on
  mostly NaN lag features);
- ``champion``: ``SegmentForecaster.predict`` now: for k < ``YOUNG_MONTHS`` (36) the
  segment shape below (the script checks that they agree), above it unchanged;
- ``naive``: the last value; ``mean``: the mean of the k available months;
- ``seasonal naive, else last value``: the same month a year before where k >= 12;
- ``segment shape``: the young series' level (mean log1p of its last min(k, 12) months)
  plus the mean over the segment's other series of (the model's log forecast for month
  o+h minus their own mean log1p over the same min(k, 12) months). The young series moves
  as the model forecasts its segment to move from the months it was seen in: season and
  growth from the segment, level from the series;
- ``segment shape from seasonal naive``: the same with the others' value a year before the
  target month instead of the model's forecast (no model needed);
- ``champion before the rule and segment shape, equal weights``: their mean on the log
  scale;
- ``segment shape and seasonal naive``: their mean on the log scale where k >= 12 (the
  segment shape alone below).

Scores per k: MASE per (series, origin) = mean |error| over h = 1..12 divided by the
series' in-sample mean |y_t - y_{t-12}| over its FULL history up to the origin (the
protocol's scale, as if the history had not been cut: the scale only normalises, no method
sees it), mean and median over pairs; WAPE = sum |e| / sum y; bias.

The development origins (2013-12 .. 2014-12, before the protocol window) choose; the
protocol origins (2016-12 .. 2017-12) only confirm (``--window protocol``).

Usage:
    .venv/bin/python benchmarks/cold_start.py [--window development|protocol] [--jobs 2]
        [--every 1] [--output cold_start.json]

Writes benchmarks/results/<output> (both windows kept: a run adds or replaces its window).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from demand_forecasting.models.forecaster import YOUNG_MONTHS, combine_logs, fit_forecaster
from demand_forecasting.models.metrics import seasonal_scale
from demand_forecasting.models.panel import Panel, panel_from_history
from demand_forecasting.models.recipe import Recipe
from machine_info import machine
from model_accuracy import load_aus_retail

HERE = Path(__file__).resolve().parent
HORIZON = 12
#: Months of history the young series keeps (30 and 35: still too short for Holt-Winters and
#: Theta, which need 36; 36 and 48: the first with them).
KS = (1, 2, 3, 6, 9, 12, 18, 23, 30, 35, 36, 48)
WINDOWS = {
    "development": pd.Timestamp("2014-12-01"),
    "protocol": pd.Timestamp("2017-12-01"),
}
LEVEL_MONTHS = 12

CHAMPION = "champion (SegmentForecaster.predict)"
BEFORE = "champion before the young-series rule (members' combination)"
NAIVE = "naive (last value)"
MEMBERS = ("xgb", "theta", "holt_winters")
MEAN = "mean of the available months"
SNAIVE = "seasonal naive, else last value"
SHAPE = "segment shape (model forecast of the other series)"
SHAPE_SN = "segment shape from seasonal naive of the other series"
BLEND = "champion before the rule and segment shape, equal weights (log)"
SHAPE_SNAIVE = "segment shape and seasonal naive (k >= 12), equal weights (log)"
METHODS = (BEFORE, CHAMPION, NAIVE, MEAN, SNAIVE, SHAPE, SHAPE_SN, BLEND, SHAPE_SNAIVE)


def cut_to_last(panel: Panel, column: int, months: int) -> Panel:
    """The panel with one series' history cut to its last ``months`` months."""
    values = panel.values.copy()
    values[: len(panel.months) - months, column] = np.nan
    return Panel(panel.months, panel.series, values)


def young_series(
    history: pd.DataFrame, target: str, origin: pd.Timestamp, recipe: Recipe
) -> list[dict[str, object]]:
    """Every method's forecasts of ``target`` made young at ``origin``, one row per k and h."""
    warnings.filterwarnings("ignore")
    full = panel_from_history(history)
    panel = full.until(origin)
    column = panel.series.index(target)
    others = [i for i in range(len(panel.series)) if i != column]
    training = Panel(panel.months, tuple(panel.series[i] for i in others), panel.values[:, others])
    model = fit_forecaster(training, recipe)
    newest = len(panel.months) - 1
    future = full.values[newest + 1 : newest + 1 + HORIZON, column]
    scale = float(seasonal_scale(panel.values[:, [column]])[0])
    z = panel.log_values
    rows: list[dict[str, object]] = []
    for k in KS:
        cut = cut_to_last(panel, column, k)
        forecast = model.predict(cut)
        wide = forecast.pivot(index="series_id", columns="horizon", values="forecast")
        champion = wide.loc[target].to_numpy(float)
        own = forecast[forecast["series_id"] == target].sort_values("horizon")
        member = {m: np.log1p(own[f"forecast_{m}"].to_numpy(float)) for m in MEMBERS}
        statistical = combine_logs(member["theta"], member["holt_winters"], recipe.theta_weight)
        before = np.expm1(combine_logs(member["xgb"], statistical, recipe.xgb_weight))
        peers = [s for s in wide.index if s != target]
        window = slice(newest + 1 - min(k, LEVEL_MONTHS), newest + 1)
        level = float(np.mean(z[window, column]))
        peer_idx = [panel.series.index(s) for s in peers]
        peer_level = np.nanmean(z[window][:, peer_idx], axis=0)  # one per peer
        peer_log = np.log1p(wide.loc[peers].to_numpy(float))  # peers x H
        shape = level + np.nanmean(peer_log - peer_level[:, None], axis=0)
        horizons = np.arange(1, HORIZON + 1)
        year_before = newest + horizons - 12
        peer_sn = z[year_before][:, peer_idx].T  # peers x H
        shape_sn = level + np.nanmean(peer_sn - peer_level[:, None], axis=0)
        last = panel.values[newest, column]
        snaive = panel.values[year_before, column] if k >= 12 else np.full(HORIZON, last)
        snaive = np.where(np.isnan(snaive), last, snaive)
        if k < YOUNG_MONTHS:  # the product's rule is the segment shape measured here
            np.testing.assert_allclose(champion, np.expm1(shape), rtol=1e-9)
        methods = {
            BEFORE: before,
            CHAMPION: champion,
            NAIVE: np.full(HORIZON, last),
            MEAN: np.full(HORIZON, np.nanmean(panel.values[newest + 1 - k :, column])),
            SNAIVE: snaive,
            SHAPE: np.expm1(shape),
            SHAPE_SN: np.expm1(shape_sn),
            BLEND: np.expm1(0.5 * np.log1p(before) + 0.5 * shape),
            SHAPE_SNAIVE: np.expm1(0.5 * np.log1p(snaive) + 0.5 * shape)
            if k >= 12
            else np.expm1(shape),
        }
        for h in range(HORIZON):
            row: dict[str, object] = {
                "series_id": target,
                "origin": origin,
                "k": k,
                "horizon": h + 1,
                "actual": future[h],
                "scale": scale,
            }
            row.update({name: float(values[h]) for name, values in methods.items()})
            rows.append(row)
    return rows


def figures(frame: pd.DataFrame, method: str) -> dict[str, float]:
    """Mean / median MASE over (series, origin) pairs, WAPE and bias of one method."""
    error = frame[method] - frame["actual"]
    pairs = (
        frame.assign(ae=error.abs())
        .groupby(["series_id", "origin"])
        .agg(mae=("ae", "mean"), scale=("scale", "first"))
    )
    mase = pairs["mae"] / pairs["scale"]
    total = float(frame["actual"].sum())
    return {
        "mean_mase": round(float(mase.mean()), 4),
        "median_mase": round(float(mase.median()), 4),
        "wape_pct": round(100 * float(error.abs().sum()) / total, 3),
        "bias_pct": round(100 * float(error.sum()) / total, 3),
        "pairs": len(pairs),
    }


def summarise(frame: pd.DataFrame) -> dict[str, object]:
    """Figures per k, per k and horizon band, and per k and origin (for stability)."""
    per_k = {str(k): {m: figures(rows, m) for m in METHODS} for k, rows in frame.groupby("k")}
    bands = {"h1-3": (1, 3), "h4-12": (4, 12)}
    per_band = {
        str(k): {
            band: {
                m: figures(rows[rows["horizon"].between(low, high)], m)["mean_mase"]
                for m in METHODS
            }
            for band, (low, high) in bands.items()
        }
        for k, rows in frame.groupby("k")
    }
    per_origin = {
        str(k): {
            pd.Timestamp(o).strftime("%Y-%m"): {
                m: figures(cell, m)["mean_mase"] for m in (BEFORE, CHAMPION, NAIVE, SHAPE)
            }
            for o, cell in rows.groupby("origin")
        }
        for k, rows in frame.groupby("k")
    }
    # How often (share of series-origin pairs) the segment shape beats the champion before.
    pair_wins = {}
    for k, rows in frame.groupby("k"):
        ae = rows.assign(
            c=(rows[BEFORE] - rows["actual"]).abs(), s=(rows[SHAPE] - rows["actual"]).abs()
        )
        per_pair = ae.groupby(["series_id", "origin"])[["c", "s"]].mean()
        pair_wins[str(k)] = round(float((per_pair["s"] < per_pair["c"]).mean()), 3)
    return {
        "per_k": per_k,
        "per_k_horizon_band_mean_mase": per_band,
        "per_k_origin_mean_mase": per_origin,
        "share_of_pairs_segment_shape_beats_champion_before": pair_wins,
    }


def main() -> None:
    """Run one window and print mean MASE / WAPE per k and method."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", choices=sorted(WINDOWS), default="development")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--origins", type=int, default=13, help="rolling origins")
    parser.add_argument("--every", type=int, default=1, help="use every n-th origin")
    parser.add_argument("--output", default="cold_start.json", help="file in results/")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    start_machine = machine()
    data = load_aus_retail()
    recipe = Recipe(horizon=HORIZON)
    last = WINDOWS[args.window]
    origins = [last - pd.DateOffset(months=m) for m in range(args.origins - 1, -1, -args.every)]
    tasks = []
    for _, frame in data.groupby("segment"):
        history = frame[["series_id", "month", "y"]]
        series = history.groupby("series_id")["month"].max()
        if len(series) < 2:
            continue  # no other series to train the segment's model on
        for origin in origins:
            for target in series[series >= origin].index:
                tasks.append((history, str(target), origin))
    started = time.perf_counter()
    results = Parallel(n_jobs=args.jobs)(
        delayed(young_series)(history, target, origin, recipe) for history, target, origin in tasks
    )
    wall = time.perf_counter() - started
    frame = pd.DataFrame([row for rows in results for row in rows])
    frame = frame.dropna(subset=["actual"])
    summary = summarise(frame)

    path = HERE / "results" / args.output
    result = json.loads(path.read_text()) if path.is_file() else {}
    result[args.window] = {
        "origins": [o.strftime("%Y-%m") for o in origins],
        "ks": list(KS),
        "horizon": HORIZON,
        "young_series_cases": len(tasks),
        "series": int(frame["series_id"].nunique()),
        "recipe": json.loads(recipe.to_json()),
        **summary,
        "seconds": {"wall": round(wall, 1), "jobs": args.jobs, "fits": len(tasks)},
        "machine": {**start_machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "measured": time.strftime("%Y-%m-%d"),
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"{args.window}: {len(tasks)} young-series cases, {wall:.0f} s wall")
    print("| k | " + " | ".join(METHODS) + " |")
    print("|---" * (len(METHODS) + 1) + "|")
    for k, cells in summary["per_k"].items():  # type: ignore[union-attr]
        print(
            f"| {k} | "
            + " | ".join(
                f"{cells[m]['mean_mase']:.2f} / {cells[m]['wape_pct']:.1f}" for m in METHODS
            )
            + " |"
        )
    print("(mean MASE / WAPE %)")


if __name__ == "__main__":
    main()
