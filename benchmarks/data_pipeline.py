"""Data pipeline throughput: ingest + validate_data + build_features, real data and synthetic.

For each scale, a fresh schema gets the dataset's whole history landed (one CSV per month,
1982-04 .. 2018-11), then the three stages run on it once (the initial load), then 2018-12 is
landed and the three stages run again (a monthly increment). Rows/s = landed rows / seconds.

Scales: ``real`` = the bundled aus_retail (152 series, ~64k rows); ``10x`` and ``100x`` =
the synthetic generator with 1,520 and 15,200 series over the same months (~0.67M and
~6.7M rows). Spark starts once; a small warm-up run (aus_retail_small, separate schema)
goes first so that JVM warm-up is not charged to the first scale (its time is reported).

Then, unless ``--no-fresh``, the data half as the monthly job meets it: each month in a new
process (a cold JVM, Spark started in it, like ``demand-forecasting run monthly``) on the real
data: **cold** (aus_retail to 2015-12, 405 files), **warm** (2016-01 landed), **rerun** (the
same month again, nothing new). Each process reports Spark start, run-context build and the
three stages, and the Spark jobs they ran.

Usage:
    .venv/bin/python benchmarks/data_pipeline.py [--scales real,10x,100x] [--state DIR]
        [--no-fresh] [--out FILE]

Prints the figures with the machine and writes benchmarks/results/data_pipeline.json. State
goes to a temporary folder (deleted afterwards) unless --state.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from machine_info import machine

HERE = Path(__file__).resolve().parent
TARGET_REAL_S = 60.0
#: scale -> (dataset, number of series for the synthetic generator)
SCALES: dict[str, tuple[str, int | None]] = {
    "real": ("aus_retail", None),
    "10x": ("synthetic", 1520),
    "100x": ("synthetic", 15200),
}
HISTORY_END = date(2018, 11, 1)


def timed(step: Callable[[], object]) -> float:
    """Seconds ``step`` takes."""
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run_stages(ctx: Any, config: Any, month: date = date(2018, 12, 1)) -> dict[str, float]:
    """Run ingest, validate_data and build_features once; seconds per stage."""
    from demand_forecasting.data import build_features, ingest, validate

    print(f"  {config.name}: ingest, validate_data, build_features ...", flush=True)
    return {
        "ingest": timed(lambda: ingest.run(ctx, ingest.IngestConfig(config))),
        "validate": timed(
            lambda: validate.run(ctx, validate.ValidateConfig(config, 0.05, run_month=month))
        ),
        "features": timed(lambda: build_features.run(ctx, build_features.FeaturesConfig(config))),
    }


def spark_jobs(ctx: Any) -> int:
    """Spark jobs started so far in this process (the scheduler's next job id)."""
    next_id = ctx.spark.sparkContext._jsc.sc().dagScheduler().nextJobId()
    return int(next_id if isinstance(next_id, int) else next_id.get())


def fresh_month(kind: str) -> dict[str, Any]:
    """One month of the data half in this (new) process: ``cold``, ``warm`` or ``rerun``."""
    from demand_forecasting import names
    from demand_forecasting.data.config import load_dataset_config
    from demand_forecasting.data.landing import land
    from demand_forecasting.platform.context import build_context
    from demand_forecasting.platform.paths import LocalLayout, default_state_dir
    from demand_forecasting.platform.spark import get_spark

    spark_s = timed(lambda: get_spark(False, LocalLayout(default_state_dir()).spark))
    started = time.perf_counter()
    ctx = build_context("dev", "dev", "demand_forecasting")
    context_s = time.perf_counter() - started
    config = load_dataset_config("aus_retail")
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, config.name))
    if kind == "cold":
        land(config, folder, until=date(2015, 12, 1))
    elif kind == "warm":
        land(config, folder, next_month=True)
    jobs = spark_jobs(ctx)
    stages = run_stages(ctx, config, month=date(2016, 1, 1))
    versions = {t: ctx.tables.version(ctx.table(t)) for t in (names.BRONZE, names.FEATURES)}
    return {
        "month": kind,
        "spark_start_s": round(spark_s, 1),
        "context_s": round(context_s, 1),
        "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "stages_total_s": round(sum(stages.values()), 1),
        "spark_jobs": spark_jobs(ctx) - jobs,
        "table_versions": versions,
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


def fresh_processes(state: Path) -> list[dict[str, Any]]:
    """Cold, warm and rerun months of the real data, each in a new process on ``state``."""
    results = []
    for kind in ("cold", "warm", "rerun"):
        print(f"fresh process: {kind} month ...", flush=True)
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--child", kind],
            env={**os.environ, "DEMAND_FORECASTING_HOME": str(state)},
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise RuntimeError(f"the {kind} month failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["process_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def bench_scale(name: str, dataset: str, series: int | None) -> dict[str, Any]:
    """Initial load of the whole history, then one monthly increment, on a fresh schema."""
    from demand_forecasting import names
    from demand_forecasting.data.config import load_dataset_config
    from demand_forecasting.data.landing import land
    from demand_forecasting.platform.context import build_context

    ctx = build_context("dev", "bench", f"scale_{name}")
    config = load_dataset_config(dataset)
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, config.name))
    started = time.perf_counter()
    history = land(config, folder, until=HISTORY_END, series=series)
    land_s = time.perf_counter() - started
    load0 = os.getloadavg()[0]
    initial = run_stages(ctx, config)
    load1 = os.getloadavg()[0]
    increment = land(config, folder, next_month=True, series=series)
    monthly = run_stages(ctx, config)
    rerun = run_stages(ctx, config)  # nothing new: must change nothing, and cost little
    rows = history.rows
    total = sum(initial.values())
    result = {
        "scale": name,
        "dataset": dataset,
        "series": series or 152,
        "rows": rows,
        "land_s": round(land_s, 1),
        "initial_s": {k: round(v, 1) for k, v in initial.items()},
        "initial_total_s": round(total, 1),
        "rows_per_s": round(rows / total),
        "rows_per_s_by_stage": {k: round(rows / v) for k, v in initial.items()},
        "increment_rows": increment.rows,
        "increment_s": {k: round(v, 1) for k, v in monthly.items()},
        "increment_total_s": round(sum(monthly.values()), 1),
        "rerun_s": {k: round(v, 1) for k, v in rerun.items()},
        "rerun_total_s": round(sum(rerun.values()), 1),
        "load_average_1m": [round(load0, 1), round(load1, 1), round(os.getloadavg()[0], 1)],
    }
    print(json.dumps(result), flush=True)
    return result


def warm_up() -> float:
    """One small run through the stages so JVM warm-up is not charged to the first scale."""
    from demand_forecasting import names
    from demand_forecasting.data.config import load_dataset_config
    from demand_forecasting.data.landing import land
    from demand_forecasting.platform.context import build_context

    started = time.perf_counter()
    ctx = build_context("dev", "bench", "warm_up")
    config = load_dataset_config("aus_retail_small")
    land(config, Path(ctx.volume_path(names.LANDING_VOLUME, config.name)), until=date(1990, 12, 1))
    run_stages(ctx, config)
    return time.perf_counter() - started


def main() -> None:
    """Run the scales asked for and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="real,10x,100x", help="comma-separated scales")
    parser.add_argument("--state", type=Path, help="state folder to keep (default: temporary)")
    parser.add_argument("--no-fresh", action="store_true", help="skip the fresh-process months")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "data_pipeline.json")
    parser.add_argument("--child", choices=("cold", "warm", "rerun"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.WARNING)
    if args.child:  # one fresh-process month; state from DEMAND_FORECASTING_HOME
        print(json.dumps(fresh_month(args.child)), flush=True)
        return
    state = args.state or Path(tempfile.mkdtemp(prefix="bench_data_"))
    os.environ["DEMAND_FORECASTING_HOME"] = str(state)
    info = machine()
    try:
        fresh = [] if args.no_fresh else fresh_processes(state / "fresh")
        from demand_forecasting.platform.context import build_context

        spark_s = timed(lambda: build_context("dev", "bench", "start"))
        warm_s = warm_up()
        results = [bench_scale(s, *SCALES[s]) for s in args.scales.split(",")]
    finally:
        if args.state is None:
            shutil.rmtree(state, ignore_errors=True)
    document = {
        "benchmark": "data_pipeline",
        "date": time.strftime("%Y-%m-%d"),
        "machine": info,
        "spark_start_s": round(spark_s, 1),
        "warm_up_s": round(warm_s, 1),
        "target_real_s": TARGET_REAL_S,
        "fresh_process_months": fresh,
        "results": results,
    }
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(
        f"\n{'scale':>6} {'rows':>10} {'ingest':>7} {'validate':>9} {'features':>9} "
        f"{'total':>7} {'rows/s':>8} {'+1 month':>9}"
    )
    for r in results:
        s = r["initial_s"]
        print(
            f"{r['scale']:>6} {r['rows']:>10,} {s['ingest']:>7} {s['validate']:>9} "
            f"{s['features']:>9} {r['initial_total_s']:>7} {r['rows_per_s']:>8,} "
            f"{r['increment_total_s']:>9}"
        )
    for f in fresh:
        st = f["stages_s"]
        print(
            f"fresh {f['month']:>5}: Spark {f['spark_start_s']} s, context {f['context_s']} s, "
            f"ingest {st['ingest']}, validate {st['validate']}, features {st['features']} "
            f"= {f['stages_total_s']} s ({f['spark_jobs']} Spark jobs), process {f['process_s']} s"
        )
    print(f"\nSpark start {spark_s:.1f} s, warm-up {warm_s:.1f} s; {info}; written to {out}")


if __name__ == "__main__":
    main()
