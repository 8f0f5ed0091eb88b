"""Training speed: the real segments trained, validated and registered; Spark vs a loop.

(a) Pipeline: the whole aus_retail history (46 segments, 152 series, 1982-2018) in a gold
    table; the train, validate_models and deploy tasks' ``run`` functions as the job calls
    them (Spark already up, MLflow on a fresh sqlite store). Figures: wall time per task,
    fit time per segment, MLflow logging + registration time per model.
(b) Fit only, Spark ``applyInPandas`` vs a plain loop on the driver, same worker function
    (final fit + backtest fit + K backtest forecasts + plot), at 46 real segments and at 100
    and 460 synthetic segments (10 noisy copies of each real segment: same shapes, 10x the
    work).

Usage:
    .venv/bin/python benchmarks/training_speed.py [--scales 46,100,460] [--sequential-max 100]

Writes benchmarks/results/training_speed.json (figures + machine). State goes to a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from demand_forecasting import names
from demand_forecasting.models import deploy, train, validate
from demand_forecasting.models.gate import GateRule
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.platform.context import build_context
from demand_forecasting.platform.task_values import LocalTaskValues
from model_accuracy import load_aus_retail

HERE = Path(__file__).resolve().parent

GOLD_SCHEMA = "series_id string, segment string, month date, y double, is_gap boolean"


def synthetic_copies(data: pd.DataFrame, copies: int, seed: int = 1) -> pd.DataFrame:
    """``copies`` noisy copies of every segment (level x lognormal, 5% monthly noise)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(copies):
        copy = data.copy()
        factor = np.exp(rng.normal(0, 0.3, copy["series_id"].nunique()))
        level = dict(zip(copy["series_id"].unique(), factor, strict=True))
        copy["y"] = (
            copy["y"] * copy["series_id"].map(level) * np.exp(rng.normal(0, 0.05, len(copy)))
        )
        copy["series_id"] = copy["series_id"] + f"_c{k}"
        copy["segment"] = copy["segment"] + f"__copy{k}"
        frames.append(copy)
    return pd.concat(frames, ignore_index=True)


def spark_frame(ctx, data: pd.DataFrame):  # type: ignore[no-untyped-def]
    gold = data.assign(month=data["month"].dt.date, is_gap=False)[
        ["series_id", "segment", "month", "y", "is_gap"]
    ]
    return ctx.spark.createDataFrame(gold, GOLD_SCHEMA)


def pipeline(ctx, data: pd.DataFrame, recipe: Recipe, origins: int) -> dict:  # type: ignore[no-untyped-def]
    """Train -> validate -> deploy on all real segments; time each."""
    ctx.tables.write(spark_frame(ctx, data), ctx.table(names.FEATURES), mode="overwrite")
    values = LocalTaskValues()
    ctx.task_values = values
    figures: dict = {}
    started = time.perf_counter()
    with values.running("train"):
        trained = train.run(
            ctx,
            train.TrainConfig(None, recipe, "demand", "/Shared/bench", backtest_origins=origins),
        )
    figures["train_s"] = time.perf_counter() - started
    figures["fit_s"] = trained.fit_seconds
    logs = list(trained.log_seconds.values())
    figures["log_per_model_s"] = {
        "mean": statistics.mean(logs),
        "median": statistics.median(logs),
        "max": max(logs),
        "min": min(logs),
        "models": len(logs),
    }
    mark = time.perf_counter()
    with values.running("validate_models"):
        validated = validate.run(
            ctx, validate.ValidateConfig(None, "demand", origins, GateRule(0.02))
        )
    figures["validate_s"] = time.perf_counter() - mark
    figures["backtests_reused"] = validated.backtests_reused
    figures["backtests_run"] = validated.backtests_run
    mark = time.perf_counter()
    with values.running("deploy"):
        deployed = deploy.run(ctx, deploy.DeployConfig(None, "demand", False))
    figures["deploy_s"] = time.perf_counter() - mark
    figures["total_s"] = time.perf_counter() - started
    figures["segments"] = len(trained.candidates)
    figures["passed"] = len(validated.passed)
    figures["refused"] = sorted(validated.refused)
    figures["fallbacks"] = len(validated.fallbacks)
    figures["promoted"] = len(deployed.promoted)
    evaluations = ctx.tables.read(ctx.table(names.EVALUATIONS)).toPandas()
    # The fallbacks' rows are seasonal naive's own figures: the candidates' mean leaves them out.
    evaluations = evaluations[~evaluations["reasons"].str.startswith("seasonal-naive fallback")]
    figures["backtest_mase"] = {
        "candidate_mean": float(evaluations["candidate_mase"].mean()),
        "naive_mean": float(evaluations["naive_mase"].mean()),
    }
    return figures


def fit_only(ctx, data: pd.DataFrame, recipe: Recipe, parallel: bool) -> dict:  # type: ignore[no-untyped-def]
    """Fit every segment of ``data`` with Spark or a loop; wall time and per-segment time."""
    frame = spark_frame(ctx, data).select("segment", "series_id", "month", "y").cache()
    frame.count()
    segments = data["segment"].nunique()
    started = time.perf_counter()
    results = train.fit_segments(frame, recipe, segments, parallel)
    wall = time.perf_counter() - started
    frame.unpersist()
    return {
        "segments": segments,
        "wall_s": round(wall, 1),
        "per_segment_fit_s_median": round(float(results["fit_seconds"].median()), 3),
        "failed": int((results["status"] != "ok").sum()),
    }


def main() -> None:
    """Run (a) and (b) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", default="46,100,460", help="segment counts for the Spark-vs-loop comparison"
    )
    parser.add_argument(
        "--sequential-max",
        type=int,
        default=100,
        help="largest scale also run as a loop (the loop is the slow one)",
    )
    parser.add_argument("--backtest-origins", type=int, default=6)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()

    data = load_aus_retail()
    recipe = Recipe()
    result: dict = {"recipe": json.loads(recipe.to_json())}
    with tempfile.TemporaryDirectory(prefix="training-speed-") as state:
        started = time.perf_counter()
        ctx = build_context("dev", "main", "demand_forecasting", state_dir=Path(state))
        result["spark_start_s"] = round(time.perf_counter() - started, 1)
        if not args.skip_pipeline:
            result["pipeline"] = pipeline(ctx, data, recipe, args.backtest_origins)
            write(result)
            print(json.dumps(result["pipeline"], indent=1, default=str), flush=True)
        copies = synthetic_copies(data, 10)
        names_sorted = sorted(copies["segment"].unique())
        comparison = []
        for scale in (int(s) for s in args.scales.split(",")):
            subset = (
                data
                if scale == data["segment"].nunique()
                else copies[copies["segment"].isin(names_sorted[:scale])]
            )
            row = {"segments": scale, "spark": fit_only(ctx, subset, recipe, True)}
            if scale <= args.sequential_max:
                row["loop"] = fit_only(ctx, subset, recipe, False)
            comparison.append(row)
            result["spark_vs_loop"] = comparison
            write(result)
            print(json.dumps(row), flush=True)


def write(result: dict) -> None:
    """Write the figures gathered so far, with the machine (called after every step)."""
    result["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    result["measured"] = time.strftime("%Y-%m-%d")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "training_speed.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
