"""Data pipeline throughput: ingest + validate_data + build_features, real data and synthetic.

For each scale, a fresh schema gets the dataset's whole history landed (one CSV per month,
1982-04 .. 2018-11), then the three stages run on it once (the initial load), then 2018-12 is
landed and the three stages run again (a monthly increment). Rows/s = landed rows / seconds.

Scales: ``real`` = the bundled aus_retail (152 series, ~64k rows); ``10x`` and ``100x`` =
the synthetic generator with 1,520 and 15,200 series over the same months (~0.67M and
~6.7M rows). Spark starts once; a small warm-up run (aus_retail_small, separate schema)
goes first so that JVM warm-up is not charged to the first scale (its time is reported).

Usage:
    .venv/bin/python benchmarks/data_pipeline.py [--scales real,10x,100x] [--state DIR]

Prints the figures with the machine and writes benchmarks/results/data_pipeline.json. State
goes to a temporary folder (deleted afterwards) unless --state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_REAL_S = 60.0
#: scale -> (dataset, number of series for the synthetic generator)
SCALES: dict[str, tuple[str, int | None]] = {
    "real": ("aus_retail", None),
    "10x": ("synthetic", 1520),
    "100x": ("synthetic", 15200),
}
HISTORY_END = date(2018, 11, 1)


def machine() -> dict[str, Any]:
    """Cores, memory, Python, CPU model and OS of this machine, and how busy it is."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        memory_gb = round(kb / 1024 / 1024, 1)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return {
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "cpu": cpu,
        "os": platform.platform(),
        "java": (java.stderr.splitlines() or ["unknown"])[0],
        # The machine may be shared: a load above the core count slows every figure.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def timed(step: Callable[[], object]) -> float:
    """Seconds ``step`` takes."""
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run_stages(ctx: Any, config: Any) -> dict[str, float]:
    """Run ingest, validate_data and build_features once; seconds per stage."""
    from demand_forecasting.data import build_features, ingest, validate

    month = date(2018, 12, 1)
    print(f"  {config.name}: ingest, validate_data, build_features ...", flush=True)
    return {
        "ingest": timed(lambda: ingest.run(ctx, ingest.IngestConfig(config))),
        "validate": timed(
            lambda: validate.run(ctx, validate.ValidateConfig(config, 0.05, run_month=month))
        ),
        "features": timed(lambda: build_features.run(ctx, build_features.FeaturesConfig(config))),
    }


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
    args = parser.parse_args()
    state = args.state or Path(tempfile.mkdtemp(prefix="bench_data_"))
    os.environ["DEMAND_FORECASTING_HOME"] = str(state)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.WARNING)
    info = machine()
    try:
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
        "results": results,
    }
    out = HERE / "results" / "data_pipeline.json"
    out.parent.mkdir(exist_ok=True)
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
    print(f"\nSpark start {spark_s:.1f} s, warm-up {warm_s:.1f} s; {info}; written to {out}")


if __name__ == "__main__":
    main()
