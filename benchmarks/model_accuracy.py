"""Model accuracy on the bundled real data, with the protocol of ACCURACY.md.

aus_retail (152 series; the 148 observed in the last month are scored), last month T =
2018-12, 13 rolling origins 2016-12 .. 2017-12, h = 1..12. At each origin every segment's
forecaster is fitted on the months <= origin only (the production recipe, the production
code: ``fit_forecaster`` + ``predict``) and forecasts 12 months. Per (series, origin):
MASE = mean |error| / in-sample mean |y_t - y_{t-12}| up to the origin; WAPE overall.

Reported side by side: the champion models (the recipe's combination of Holt-Winters,
Theta and XGBoost), seasonal naive, each member alone and the combination at other XGBoost
weights (same fits: the members are the combination's own components, so the ablation costs
no extra fit). The weights are the recipe defaults, chosen on the earlier development window
(``--last-origin 2014-12``, see benchmarks/README.md) before the protocol's window was run;
nothing here is tuned on the test origins.

It also times one fit and one forecast per segment on the whole history (1982-2018, one
process, CPU seconds): what the train task pays per segment.

``--dataset synthetic`` runs the same protocol on the synthetic generator's default dataset
(152 series of unit sales with price and promotions, 1982-04 .. 2018-12, 32 segments);
``--covariates`` then fits the recipe with the dataset's planned covariates (price, promo),
their actual values at the target months standing in for the plans (ex post).

Usage:
    .venv/bin/python benchmarks/model_accuracy.py [--jobs 2] [--origins 13] \
        [--last-origin 2017-12] [--output model_accuracy.json] [--recipe JSON] \
        [--dataset aus_retail|synthetic] [--covariates]

``--recipe`` overrides recipe fields as the train task's ``--recipe`` does (e.g. the
previous booster, ``'{"xgb_params": {"n_estimators": 200, "max_depth": 5,
"learning_rate": 0.05}}'``). Writes benchmarks/results/<output> (figures + machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from demand_forecasting.data.config import SyntheticSource, load_dataset_config
from demand_forecasting.data.synthetic import synthetic_months
from demand_forecasting.models.backtest import NAIVE
from demand_forecasting.models.baseline import seasonal_naive
from demand_forecasting.models.forecaster import fit_forecaster
from demand_forecasting.models.metrics import accuracy, seasonal_scale
from demand_forecasting.models.panel import panel_from_history
from demand_forecasting.models.recipe import Recipe, default_recipe
from machine_info import machine

HERE = Path(__file__).resolve().parent
LAST_ORIGIN = pd.Timestamp("2017-12-01")
HORIZON = 12
CHAMPION = "champion (recipe defaults)"

#: ACCURACY.md's peers, same protocol and machine kind (for reference, not re-run here).
PEERS = {
    "statsforecast AutoETS": (0.988, 3.03, 254),
    "statsforecast AutoARIMA": (0.904, 2.63, 454),
    "mean of ETS, Theta, ARIMA": (0.913, 2.64, 760),
    "XGBoost per segment (ACCURACY.md recipe)": (1.043, 2.92, 262),
}


def load_aus_retail() -> pd.DataFrame:
    """``series_id, segment, month, y`` of the bundled dataset, segments from its config."""
    config = load_dataset_config("aus_retail")
    with resources.as_file(resources.files("tsdata").joinpath("fpppy/aus_retail.csv")) as csv:
        raw = pd.read_csv(csv, parse_dates=["Month"])
    raw["segment"] = [
        config.segment_of({"state": s, "industry": i})
        for s, i in zip(raw["State"], raw["Industry"], strict=True)
    ]
    return raw.rename(columns={"Series ID": "series_id", "Month": "month", "Turnover": "y"})[
        ["series_id", "segment", "month", "y"]
    ]


def load_synthetic() -> pd.DataFrame:
    """``series_id, segment, month, y, price, promo`` of the synthetic dataset's defaults."""
    config = load_dataset_config("synthetic")
    source = config.source
    assert isinstance(source, SyntheticSource)
    frames = []
    for month, raw in synthetic_months(
        config, source.series, source.seed, source.first_month, source.last_month
    ):
        frames.append(
            pd.DataFrame(
                {
                    "series_id": raw["Region"] + "|" + raw["Product"],
                    "segment": [
                        config.segment_of({"region": r, "category": c})
                        for r, c in zip(raw["Region"], raw["Category"], strict=True)
                    ],
                    "month": pd.Timestamp(month),
                    "y": raw["Units"].astype(float),
                    "price": raw["Price"].astype(float),
                    "promo": raw["Promo"].astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def forecast_segment(
    history: pd.DataFrame, origin: pd.Timestamp, recipe: Recipe
) -> tuple[pd.DataFrame, float]:
    """Fit at ``origin`` and forecast; return the forecasts and the CPU seconds spent.

    With planned covariates, their actual values after the origin are the plans (ex post).
    """
    warnings.filterwarnings("ignore")
    started = time.process_time()
    panel = panel_from_history(history, recipe.covariates).until(origin)
    forecast = fit_forecaster(panel, recipe).predict(panel)
    naive = seasonal_naive(panel, recipe.horizon).rename(columns={"forecast": NAIVE})
    scale = pd.Series(seasonal_scale(panel.values), index=list(panel.series), name="scale")
    frame = forecast.merge(
        naive[["series_id", "horizon", NAIVE]], on=["series_id", "horizon"]
    ).merge(scale, left_on="series_id", right_index=True)
    return frame, time.process_time() - started


def full_history_cost(data: pd.DataFrame, recipe: Recipe) -> dict[str, float]:
    """CPU seconds per segment to fit on the whole history and to forecast from it."""
    fit_seconds, predict_seconds = [], []
    for _, frame in data.groupby("segment"):
        panel = panel_from_history(frame, recipe.covariates)
        started = time.process_time()
        forecaster = fit_forecaster(panel, recipe)
        fitted = time.process_time()
        forecaster.predict(panel.with_unknown_plans(recipe.horizon))
        fit_seconds.append(fitted - started)
        predict_seconds.append(time.process_time() - fitted)
    return {
        "segments": len(fit_seconds),
        "fit_cpu_s_per_segment": round(float(np.mean(fit_seconds)), 3),
        "predict_cpu_s_per_segment": round(float(np.mean(predict_seconds)), 3),
    }


def combinations(forecasts: pd.DataFrame, recipe: Recipe) -> dict[str, pd.Series]:
    """The members recombined at other weights (ablation from the same fits, log scale)."""
    logs = {
        name: np.log1p(forecasts[f"forecast_{name}"]) for name in ("holt_winters", "theta", "xgb")
    }
    statistical = (
        recipe.theta_weight * logs["theta"] + (1 - recipe.theta_weight) * logs["holt_winters"]
    )
    out = {"Holt-Winters + Theta (statistical members, equal weights)": np.expm1(statistical)}
    for weight in (0.25, 0.5, 0.75):
        blend = weight * logs["xgb"] + (1 - weight) * statistical
        out[f"statistical members + XGBoost at weight {weight}"] = np.expm1(blend)
    out["Holt-Winters + XGBoost at weight 0.5 (the previous weights)"] = np.expm1(
        0.5 * logs["xgb"] + 0.5 * logs["holt_winters"]
    )
    return out


def score(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """The protocol's figures of one forecast column: mean / median MASE per pair, WAPE, bias."""
    scored = frame.dropna(subset=["actual", column])
    per_pair = (
        scored.assign(ae=(scored[column] - scored["actual"]).abs())
        .groupby(["series_id", "origin"])
        .agg(mae=("ae", "mean"), scale=("scale", "first"))
    )
    figures = accuracy(scored, column)
    return {
        "mean_mase": round(figures.mase, 4),
        "median_mase": round(float((per_pair["mae"] / per_pair["scale"]).median()), 4),
        "wape_pct": round(100 * figures.wape, 3),
        "bias_pct": round(100 * figures.bias, 3),
        "pairs": figures.pairs,
    }


def main() -> None:
    """Run the protocol and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--origins", type=int, default=13, help="rolling origins")
    parser.add_argument(
        "--last-origin",
        default=LAST_ORIGIN.strftime("%Y-%m"),
        help="newest origin (the protocol's 2017-12; 2014-12 is the development window)",
    )
    parser.add_argument("--output", default="model_accuracy.json", help="file in results/")
    parser.add_argument("--recipe", default="{}", help="JSON overrides of the recipe")
    parser.add_argument("--dataset", choices=("aus_retail", "synthetic"), default="aus_retail")
    parser.add_argument(
        "--covariates",
        action="store_true",
        help="fit with the dataset's planned covariates (synthetic: price, promo)",
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    start_machine = machine()
    data = load_aus_retail() if args.dataset == "aus_retail" else load_synthetic()
    covariates = load_dataset_config(args.dataset).planned if args.covariates else ()
    recipe = default_recipe(HORIZON, covariates).with_overrides(**json.loads(args.recipe))
    cost = full_history_cost(data, recipe)
    last_origin = pd.Timestamp(f"{args.last_origin}-01")
    origins = [last_origin - pd.DateOffset(months=k) for k in range(args.origins - 1, -1, -1)]
    started = time.perf_counter()
    tasks = [
        (segment, frame[["series_id", "month", "y", *covariates]], origin)
        for segment, frame in data.groupby("segment")
        for origin in origins
    ]
    results = Parallel(n_jobs=args.jobs)(
        delayed(forecast_segment)(history, origin, recipe) for _, history, origin in tasks
    )
    wall = time.perf_counter() - started
    frames = [frame for frame, _ in results]
    cpu = sum(seconds for _, seconds in results)

    forecasts = pd.concat(frames, ignore_index=True)
    actual = data[["series_id", "month", "y"]].rename(columns={"y": "actual"})
    forecasts = forecasts.merge(actual, on=["series_id", "month"], how="left")
    scorable = data.groupby("series_id")["month"].max() == data["month"].max()
    forecasts = forecasts[forecasts["series_id"].isin(scorable[scorable].index)]
    forecasts = forecasts.assign(**combinations(forecasts, recipe))
    methods = {
        CHAMPION: "forecast",
        "Holt-Winters alone": "forecast_holt_winters",
        "Theta alone": "forecast_theta",
        "XGBoost alone": "forecast_xgb",
        **{label: label for label in combinations(forecasts.head(0), recipe)},
        "seasonal naive": NAIVE,
    }
    rows = {label: score(forecasts, column) for label, column in methods.items()}
    naive = rows["seasonal naive"]["mean_mase"]
    champion = rows[CHAMPION]["mean_mase"]
    result = {
        "protocol": {
            "dataset": args.dataset,
            "covariates": list(covariates),
            "origins": [o.strftime("%Y-%m") for o in origins],
            "horizon": HORIZON,
            "series_scored": int(forecasts["series_id"].nunique()),
            "segments": int(data["segment"].nunique()),
        },
        "recipe": json.loads(recipe.to_json()),
        "methods": rows,
        "champion_vs_naive_mase_improvement_pct": round(100 * (1 - champion / naive), 1),
        "fit_predict_seconds": {
            "wall": round(wall, 1),
            "cpu": round(cpu, 1),
            "jobs": args.jobs,
            "fits": len(tasks),
        },
        "full_history_cost": cost,
        "peers_from_ACCURACY_md": PEERS,
        "machine": {**start_machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "measured": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / args.output).write_text(json.dumps(result, indent=1))
    print("| method | mean MASE | median MASE | WAPE % | bias % | pairs |")
    print("|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['mean_mase']:.3f} | {r['median_mase']:.3f} | "
            f"{r['wape_pct']:.2f} | {r['bias_pct']:+.2f} | {r['pairs']} |"
        )
    print(
        f"champion vs seasonal naive: {result['champion_vs_naive_mase_improvement_pct']}% "
        f"lower mean MASE; {len(tasks)} fits in {wall:.0f} s wall ({cpu:.0f} s CPU, "
        f"{args.jobs} processes); load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"whole history, per segment: fit {cost['fit_cpu_s_per_segment']} s CPU, "
        f"forecast {cost['predict_cpu_s_per_segment']} s CPU"
    )
    assert np.isfinite(champion)


if __name__ == "__main__":
    main()
