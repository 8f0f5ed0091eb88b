"""The whole monthly job on the bundled data: cold month, then a warm month, per task.

(a) Cold: a fresh state folder, the history landed up to ``--until`` (default 2015-12), then
    ``demand-forecasting run monthly --target dev`` as a fresh process: Spark start, ingest
    of the whole history, features, every segment trains, validates and deploys, scoring
    and monitoring.
(b) Warm: ``land --next-month`` and the same command again: only what check_drift selects
    (drift or no champion) retrains; every series is scored.

Each run's wall time is the process's; the per-task times come from the runner's run record
and the peak memory and rows from the telemetry table. Targets on 2 cores: cold < 180 s,
warm < 90 s, scoring all series < 10 s.

Usage:
    .venv/bin/python benchmarks/monthly_job.py [--dataset aus_retail] [--until 2015-12]
        [--state DIR]

Writes benchmarks/results/monthly_job.json. State goes to a temporary folder unless --state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine_info import machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGETS_S = {"cold": 180.0, "warm": 90.0, "score": 10.0}
CATALOG, SCHEMA = "dev", "demand_forecasting"


def cli(state: Path, *args: str) -> float:
    """Run ``demand-forecasting <args>`` as a fresh process on ``state``; return wall seconds."""
    env = {**os.environ, "DEMAND_FORECASTING_HOME": str(state), "MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "demand_forecasting.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise SystemExit(f"demand-forecasting {' '.join(args)} failed ({done.returncode})")
    return wall


def newest_record(state: Path) -> dict[str, Any]:
    """The newest run record the local runner wrote."""
    records = sorted((state / "runs").glob("*_monthly_*.json"))
    return dict(json.loads(records[-1].read_text()))


def telemetry(state: Path, job_run_id: int) -> dict[str, dict[str, Any]]:
    """``{task: {peak_memory_mb, rows_in, rows_out}}`` of one job run (read without Spark)."""
    from deltalake import DeltaTable

    path = state / "warehouse" / CATALOG / SCHEMA / "run_telemetry"
    frame = DeltaTable(str(path)).to_pandas()
    frame = frame[frame["job_run_id"] == str(job_run_id)]
    columns = ["peak_memory_mb", "rows_in", "rows_out"]
    rows = frame.drop_duplicates("task", keep="last").set_index("task")[columns]
    return {str(k): {c: _plain(v) for c, v in row.items()} for k, row in rows.iterrows()}


def _plain(value: Any) -> Any:
    try:
        return None if value != value else float(value)  # NaN -> None
    except TypeError:
        return None


def summarise(name: str, wall: float, record: dict[str, Any], state: Path) -> dict[str, Any]:
    """One month's figures: wall, per task, what retrained, what was scored."""
    extra = telemetry(state, record["run_id"])
    tasks = []
    for task in record["tasks"]:
        tasks.append(
            {
                "task": task["task_key"],
                "status": task["status"],
                "seconds": round(task["duration_s"], 2),
                **extra.get(task["task_key"], {}),
            }
        )
    by_key = {t["task_key"]: t for t in record["tasks"]}
    drift = by_key.get("check_drift", {}).get("values", {})
    score = by_key.get("score", {})
    return {
        "month": name,
        "state": record["state"],
        "wall_s": round(wall, 1),
        "runner_s": round(record["duration_s"], 1),
        "retrained_segments": drift.get("segments_to_train", []),
        "series_forecast": score.get("values", {}).get("series_forecast"),
        "score_s": round(score.get("duration_s", 0.0), 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "tasks": tasks,
    }


def print_month(month: dict[str, Any]) -> None:
    """The month's figures as a Markdown table."""
    print(
        f"\n{month['month']}: {month['state']} in {month['wall_s']} s wall "
        f"(runner {month['runner_s']} s); retrained {len(month['retrained_segments'])} "
        f"segment(s); {month['series_forecast']} series forecast"
    )
    print("| task | status | s | peak MiB | rows in | rows out |")
    print("| --- | --- | --- | --- | --- | --- |")
    for t in month["tasks"]:
        print(
            f"| {t['task']} | {t['status']} | {t['seconds']} | {t.get('peak_memory_mb')} | "
            f"{t.get('rows_in')} | {t.get('rows_out')} |"
        )


def main() -> None:
    """Land, run the cold month, land the next month, run the warm month; record it all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="aus_retail")
    parser.add_argument("--until", default="2015-12")
    parser.add_argument("--state", type=Path, default=None)
    args = parser.parse_args()
    state = args.state or Path(tempfile.mkdtemp(prefix="monthly-bench-"))
    landing = state / "volumes" / CATALOG / SCHEMA / "landing" / args.dataset
    results: dict[str, Any] = {
        "machine": machine(),
        "dataset": args.dataset,
        "until": args.until,
        "targets_s": TARGETS_S,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    months = []
    for name, land_args in (("cold", ["--until", args.until]), ("warm", ["--next-month"])):
        cli(state, "land", "--dataset", args.dataset, "--landing-dir", str(landing), *land_args)
        wall = cli(state, "run", "monthly", "--target", "dev", "--var", f"dataset={args.dataset}")
        months.append(summarise(name, wall, newest_record(state), state))
        print_month(months[-1])
    results["months"] = months
    results["met"] = {
        "cold": months[0]["wall_s"] < TARGETS_S["cold"],
        "warm": months[1]["wall_s"] < TARGETS_S["warm"],
        "score": max(m["score_s"] for m in months) < TARGETS_S["score"],
    }
    out = HERE / "results" / "monthly_job.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\ntargets met: {results['met']}; figures in {out.relative_to(REPO)}; state {state}")


if __name__ == "__main__":
    main()
