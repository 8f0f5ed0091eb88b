"""Where a monthly run's seconds go, per task: Spark jobs, CPU of each process, JVM counters.

Runs ``demand-forecasting run monthly --target dev`` in this process on an existing state
folder (``DEMAND_FORECASTING_HOME``, e.g. one that ``benchmarks/monthly_job.py --state DIR``
left after its warm month, with ``demand-forecasting land --next-month`` run first) and
records for every task the runner calls:

- wall seconds and the 1-minute load average;
- the Spark jobs it started: how many, and each one's description, call site, tasks and
  seconds (from the driver's status store, so it works with the UI off); the job that starts
  the Python worker daemon beside the first task is flagged ``background`` and left out of
  the printed job seconds;
- CPU seconds of the process tree by process name (``python``: the driver and Spark's
  Python workers; ``java``: the Spark JVM), which compare across runs better than wall time
  on a shared machine;
- with ``--cprofile``, the driver's top functions by cumulative time.

At the end it adds the JVM's own counters (``jcmd <pid> PerfCounter.print``): classes
loaded, class loading / verification / linking time, JIT compile time, GC and safepoint
time. Writes ``benchmarks/results/task_profile.json`` (or ``--out``).

Usage:
    DEMAND_FORECASTING_HOME=DIR .venv/bin/python benchmarks/task_profile.py [--cprofile]
        [--out FILE] [--var NAME=VALUE ...] [--only ENTRY_POINT ...]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demand_forecasting.platform.spark import DAEMON_JOB_DESCRIPTION
from machine_info import machine

HERE = Path(__file__).resolve().parent
#: JVM counters worth reporting (times are converted to seconds).
JVM_COUNTERS = (
    "java.cls.loadedClasses",
    "sun.cls.time",
    "sun.cls.classVerifyTime",
    "sun.cls.classLinkedTime",
    "sun.cls.defineAppClassTime",
    "sun.ci.standardTime",
    "sun.gc.collector.0.time",
    "sun.gc.collector.1.time",
    "sun.rt.safepointTime",
)


def _spark_context() -> Any:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    return session.sparkContext if session is not None else None


def next_job_id() -> int:
    """The id the next Spark job will get (0 before Spark starts)."""
    sc = _spark_context()
    if sc is None:
        return 0
    value = sc._jsc.sc().dagScheduler().nextJobId()
    return int(value if isinstance(value, int) else value.get())


def jobs_between(first: int, end: int) -> list[dict[str, Any]]:
    """Description, call site, tasks and seconds of Spark jobs ``first`` .. ``end - 1``."""
    sc = _spark_context()
    if sc is None:
        return []
    store = sc._jsc.sc().statusStore()
    jobs = []
    for job_id in range(first, end):
        try:
            job = store.job(job_id)
        except Exception:  # a job the store no longer holds
            continue
        submitted, completed = job.submissionTime(), job.completionTime()
        seconds = None
        if submitted.isDefined() and completed.isDefined():
            seconds = (completed.get().getTime() - submitted.get().getTime()) / 1000
        held = job.description()
        description = str(held.get()) if held.isDefined() else None
        jobs.append(
            {
                "id": job_id,
                "description": description[:120] if description else None,
                # The daemon-start job runs beside the task (it started while the task ran).
                "background": description == DAEMON_JOB_DESCRIPTION,
                "call_site": str(job.name())[:120],
                "tasks": int(job.numTasks()),
                "seconds": seconds,
            }
        )
    return jobs


def tree_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system, with reaped children) of this process tree, by name."""
    tick = os.sysconf("SC_CLK_TCK")
    by_name: dict[str, float] = {}
    pending, seen = [os.getpid()], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        proc = Path("/proc") / str(pid)
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            name = (proc / "comm").read_text().strip()
            children = [int(c) for f in proc.glob("task/*/children") for c in f.read_text().split()]
        except OSError:  # the process ended while we looked
            continue
        cpu = sum(int(v) for v in fields[11:15]) / tick
        by_name[name] = by_name.get(name, 0.0) + cpu
        pending.extend(children)
    return by_name


def jvm_counters() -> dict[str, str]:
    """:data:`JVM_COUNTERS` of the Spark JVM (empty without ``jcmd``)."""
    sc = _spark_context()
    if sc is None:
        return {}
    pid = sc._jvm.java.lang.ProcessHandle.current().pid()
    try:
        text = subprocess.run(
            ["jcmd", str(pid), "PerfCounter.print"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    values = dict(line.partition("=")[::2] for line in text.splitlines())
    ticks = float(values.get("sun.os.hrt.frequency", "1e9"))
    found = {}
    for key in JVM_COUNTERS:
        if key in values:
            raw = values[key].strip('"')
            timed = key.endswith(("Time", ".time"))
            found[key] = f"{int(raw) / ticks:.2f} s" if timed else raw
    return found


#: The task whose task value the monthly job's condition task (retrain_needed) reads.
CONDITION_INPUT = "df-check-drift"

#: The runner's entry-point call: ``(console-script function, argv) -> None``.
EntryPointCall = Callable[[Callable[[], object], list[str]], None]


def profiled(
    call: EntryPointCall,
    records: list[dict[str, Any]],
    use_cprofile: bool,
    only: frozenset[str] = frozenset(),
) -> EntryPointCall:
    """``call`` (the runner's entry-point call) measured per task into ``records``; with
    ``only``, entry points not in it are not called (the runner sees them succeed)."""

    def measured(function: Callable[[], object], argv: list[str]) -> None:
        if only and argv[0] not in only:
            print(f"{argv[0]}: skipped (--only)", flush=True)
            return
        first_job, cpu_before = next_job_id(), tree_cpu_seconds()
        profile = cProfile.Profile() if use_cprofile else None
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        try:
            call(function, argv)
        finally:
            if profile is not None:
                profile.disable()
            wall = time.perf_counter() - started
            end_job, cpu_after = next_job_id(), tree_cpu_seconds()
            record: dict[str, Any] = {
                "task": argv[0],
                "seconds": round(wall, 2),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "spark_jobs": end_job - first_job,
                "cpu_s": {
                    name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1)
                    for name in cpu_after
                },
                "jobs": jobs_between(first_job, end_job),
            }
            if profile is not None:
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(40)
                record["cprofile"] = text.getvalue()
            records.append(record)
            own = [j for j in record["jobs"] if not j["background"]]
            print(
                f"{record['task']}: {record['seconds']} s, {record['spark_jobs']} Spark jobs "
                f"({sum(j['seconds'] or 0 for j in own):.1f} s, {len(record['jobs']) - len(own)} "
                f"in the background), CPU {record['cpu_s']}, load {record['load_average_1m']}",
                flush=True,
            )

    return measured


def main() -> None:
    """Run the monthly job once, measured per task, and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cprofile", action="store_true", help="profile the driver too")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "task_profile.json")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ENTRY_POINT",
        help="run only this task's entry point, e.g. df-score (repeatable); the others are "
        "skipped as if they succeeded, to time a few tasks on a state folder. df-check-drift "
        "always runs: the job's condition task reads the value it publishes",
    )
    args = parser.parse_args()
    only = frozenset(args.only)
    if only and CONDITION_INPUT not in only:
        print(f"--only: {CONDITION_INPUT} runs too (the condition task needs its value)")
        only |= {CONDITION_INPUT}
    if "DEMAND_FORECASTING_HOME" not in os.environ:
        raise SystemExit("set DEMAND_FORECASTING_HOME to the state folder to run on")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from demand_forecasting import cli
    from demand_forecasting.runner import executor

    records: list[dict[str, Any]] = []
    # The runner calls every task through this module function: measure each call.
    measured = profiled(executor.call_entry_point, records, args.cprofile, only)
    executor.call_entry_point = measured  # type: ignore[assignment]
    started = time.perf_counter()
    code = cli.main(["run", "monthly", "--target", "dev", *[f"--var={v}" for v in args.var]])
    document = {
        "benchmark": "task_profile",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "exit_code": code,
        "wall_s": round(time.perf_counter() - started, 1),
        "load_average_1m_end": round(os.getloadavg()[0], 2),
        "tasks": records,
        "jvm": jvm_counters(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"job exit {code} in {document['wall_s']} s; JVM {document['jvm']}; wrote {args.out}")


if __name__ == "__main__":
    main()
