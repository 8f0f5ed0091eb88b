"""How far could better forecasts of the common shock take the statistical combination?

An analysis for issue 4 (session 7), not a method. The target is a mean MASE 25 % below
seasonal naive on the protocol window. Here the statistical combination (damped Holt-Winters
+ Theta on log1p, equal weights: the champion less its quarter-weight XGBoost) is given
knowledge no forecaster has: at every origin and horizon, the cross-series mean (or median)
of its own future log errors over the scored series, i.e. the month's common growth surprise
(what macro drivers such as population, prices or rates could at best explain). It is added
to every series' forecast. What is left is each series' own error.

If even this oracle stays above the target, no model of the common shock (a better trend,
exogenous macro data, a global model of the month's error) reaches it; the rest has to come
from forecasting individual series' departures from the common path.

The members come from ``cross_learning.member_paths`` (the production functions fitted on
the months <= each origin). Also prints how concentrated the mean MASE is: the share of the
sum from the worst 5 % and 10 % of (series, origin) pairs. Writes
results/accuracy_headroom.json (figures + machine).

    .venv/bin/python benchmarks/accuracy_headroom.py [--windows early,dev,protocol]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from cross_learning import HORIZON, WINDOWS, member_paths, months
from demand_forecasting.models.metrics import seasonal_scale
from demand_forecasting.models.recipe import Recipe
from machine_info import machine
from model_accuracy import load_aus_retail

HERE = Path(__file__).resolve().parent
TARGET_GAIN = 0.25  # issue 4: champions at least 25 % better than seasonal naive


def pair_mase(values: np.ndarray, rows: list[int], forecasts: np.ndarray) -> np.ndarray:
    """MASE per scored (series, origin), flat; ``forecasts``: origins x series x horizon of y.

    Scored: series observed in the newest month with a forecast and an actual (the protocol).
    """
    scorable = ~np.isnan(values[-1])
    out = []
    for i, r in enumerate(rows):
        scale = seasonal_scale(values[: r + 1])
        actual = values[r + 1 : r + 1 + HORIZON].T
        ok = scorable & ~np.isnan(forecasts[i]).any(axis=1) & ~np.isnan(actual).all(axis=1)
        with warnings.catch_warnings():  # rows without an actual are dropped by ``ok``
            warnings.simplefilter("ignore", RuntimeWarning)
            mae = np.nanmean(np.abs(forecasts[i] - actual), axis=1)
        out.append((mae / scale)[ok])
    return np.concatenate(out)


def window_figures(values: np.ndarray, rows: list[int], stat: np.ndarray) -> dict:
    """Naive, the statistical combination and the two oracles, mean MASE and % below naive."""
    log_values = np.log1p(np.clip(values, 0.0, None))
    scorable = ~np.isnan(values[-1])
    naive = np.stack([values[r + 1 - 12 : r + 1].T for r in rows])
    naive = np.where(np.isnan(stat), np.nan, naive)
    shifted = {"mean": stat.copy(), "median": stat.copy()}
    for i, r in enumerate(rows):
        errors = log_values[r + 1 : r + 1 + HORIZON].T - stat[i]
        errors[~scorable] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            shifted["mean"][i] += np.nanmean(errors, axis=0)
            shifted["median"][i] += np.nanmedian(errors, axis=0)

    def y(logs: np.ndarray) -> np.ndarray:
        return np.clip(np.expm1(logs), 0.0, None)

    per_pair = {
        "seasonal naive": pair_mase(values, rows, naive),
        "Holt-Winters + Theta (statistical combination)": pair_mase(values, rows, y(stat)),
        "oracle: + the future cross-series mean log error": pair_mase(
            values, rows, y(shifted["mean"])
        ),
        "oracle: + the future cross-series median log error": pair_mase(
            values, rows, y(shifted["median"])
        ),
    }
    naive_mase = float(per_pair["seasonal naive"].mean())
    figures = {
        label: {
            "mean_mase": round(float(m.mean()), 4),
            "vs_naive_pct": round(100 * (1 - m.mean() / naive_mase), 1),
            "pairs": len(m),
        }
        for label, m in per_pair.items()
    }
    ordered = np.sort(per_pair["Holt-Winters + Theta (statistical combination)"])[::-1]
    tail = {
        f"worst_{pct}pct_share_of_sum": round(
            float(ordered[: int(len(ordered) * pct / 100)].sum() / ordered.sum()), 3
        )
        for pct in (5, 10)
    }
    return {
        "methods": figures,
        "target_mean_mase": round((1 - TARGET_GAIN) * naive_mase, 4),
        "statistical_combination_tail": tail,
    }


def main() -> None:
    """Score the oracles per window and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="early,dev,protocol")
    args = parser.parse_args()
    start_machine = machine()
    data = load_aus_retail()
    panel = data.pivot(index="month", columns="series_id", values="y").asfreq("MS")
    values = panel.to_numpy()
    theta_weight = Recipe(horizon=HORIZON).theta_weight
    results = {}
    for window in args.windows.split(","):
        origins = months(*WINDOWS[window])
        started = time.process_time()
        paths = member_paths(panel, origins)
        stat = theta_weight * paths["theta"] + (1 - theta_weight) * paths["hw"]
        rows = [int(panel.index.get_loc(o)) for o in origins]
        results[window] = {"origins": list(WINDOWS[window]), **window_figures(values, rows, stat)}
        results[window]["member_cpu_s"] = round(time.process_time() - started, 1)
        print(f"\n{window} window, origins {WINDOWS[window][0]} .. {WINDOWS[window][1]}")
        print(f"target (25 % below naive): mean MASE <= {results[window]['target_mean_mase']}")
        print("| method | mean MASE | below naive % | pairs |")
        print("|---|---|---|---|")
        for label, r in results[window]["methods"].items():
            print(f"| {label} | {r['mean_mase']:.4f} | {r['vs_naive_pct']:.1f} | {r['pairs']} |")
        tail = results[window]["statistical_combination_tail"]
        print("tail of the statistical combination:", tail)
    result = {
        "analysis": "oracle common-shock correction of the statistical combination",
        "windows": results,
        "machine": {**start_machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "accuracy_headroom.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
