"""The hand-over table (``job_handover``): what a publish and a read cost, and whether two jobs
publishing at once conflict.

Builds a local Delta hand-over table in a temporary folder with ``--history`` earlier job runs
(each: the 6 publications of a monthly job run), then times, with the production class
(:class:`~demand_forecasting.platform.handover.HandOver`):

- a task's first publication in a new job run (a new row), and its retry (the row replaced);
- a read of one value of that job run;
- the Spark jobs each runs (counted by job group) and the Delta commits the table gained;
- two threads publishing for two job runs at once, ``--concurrent`` times each (the monthly
  and the full-retrain job running together): how many publications failed.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/handover.py [--history 60] [--repeat 7]
        [--concurrent 15] [--output FILE]

Prints the figures with the machine and writes benchmarks/results/handover.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demand_forecasting.platform.handover import HandOver
from demand_forecasting.platform.spark import get_spark
from demand_forecasting.platform.tables import LocalDeltaTables
from machine_info import machine

HERE = Path(__file__).resolve().parent
TABLE = "bench.demand_forecasting.job_handover"
SEGMENTS = [f"region_{i % 40:02d}__category_{i:05d}" for i in range(200)]
#: What one monthly job run publishes (task, {key: value}).
MONTH = [
    ("check_drift", {"segments_to_train": SEGMENTS}),
    ("train", {"candidates": {s: "3" for s in SEGMENTS}}),
    ("validate_models", {"challengers": {s: "3" for s in SEGMENTS[:150]}}),
    ("deploy", {"champions": {s: "3" for s in SEGMENTS[:150]}}),
    ("score", {"segments_on_fallback": SEGMENTS[:5], "run_month": "2016-01"}),
    ("monitor", {"alerts": SEGMENTS[:3]}),
]


def now() -> datetime:
    return datetime.now(UTC)


def timed(spark: Any, group: str, action: Callable[[], object]) -> tuple[float, int]:
    """Seconds ``action`` took and the Spark jobs it ran (tagged with job group ``group``)."""
    spark.sparkContext.setJobGroup(group, group)
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    jobs = len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))
    spark.sparkContext.setJobGroup("idle", "idle")
    return seconds, jobs


def summary(samples: list[tuple[float, int]]) -> dict[str, float]:
    """Median and spread of the seconds, and the median Spark job count."""
    seconds = [s for s, _ in samples]
    return {
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "spark_jobs": statistics.median(j for _, j in samples),
    }


def concurrent(tables: LocalDeltaTables, times: int) -> dict[str, Any]:
    """Two threads publishing ``times`` each for two job runs at once: failures and time."""
    failures: list[str] = []

    def publish(job_run_id: str) -> None:
        handover = HandOver(tables, TABLE, job_run_id, now)
        for i in range(times):
            try:
                handover.publish("train", {"candidates": {"a": str(i)}})
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")

    start = time.perf_counter()
    threads = [threading.Thread(target=publish, args=(r,)) for r in ("c-monthly", "c-retrain")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "publications": 2 * times,
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "wall_s": round(time.perf_counter() - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=60, help="earlier job runs in the table")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--concurrent", type=int, default=15)
    parser.add_argument("--output", default=str(HERE / "results" / "handover.json"))
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="handover-bench-") as folder:
        spark = get_spark(on_databricks=False, scratch_dir=Path(folder) / "spark")
        tables = LocalDeltaTables(spark, Path(folder) / "warehouse")
        start = time.perf_counter()
        for run in range(args.history):
            handover = HandOver(tables, TABLE, f"h{run}", now)
            for task, values in MONTH:
                handover.publish(task, values)
        fill_s = time.perf_counter() - start
        commits_before = tables.version(TABLE)
        first, retry, read = [], [], []
        for i in range(args.repeat):
            handover = HandOver(tables, TABLE, f"r{i}", now)
            first.append(timed(spark, f"p{i}", lambda h=handover: h.publish(*MONTH[1])))
            retry.append(timed(spark, f"q{i}", lambda h=handover: h.publish(*MONTH[1])))
            read.append(timed(spark, f"g{i}", lambda h=handover: h.read("train", "candidates")))
        figures = {
            "history_job_runs": args.history,
            "history_fill_s_per_publish": round(fill_s / (args.history * len(MONTH)), 3),
            "commits_per_publish": (tables.version(TABLE) - commits_before) / (2 * args.repeat),
            "files": len(list((Path(folder) / "warehouse").rglob("*.parquet"))),
            "publish_new_row": summary(first),
            "publish_retry": summary(retry),
            "read": summary(read),
            "concurrent": concurrent(tables, args.concurrent),
        }
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": info, **figures}
    print(json.dumps(result, indent=2))
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
