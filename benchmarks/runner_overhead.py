"""Runner overhead: how fast the local platform starts, and what the runner adds per task.

(a) Cold start: a fresh Python process builds the run context (local Spark with Delta,
    sqlite MLflow), then does a first Delta write/read and a first MLflow query.
(b) A 3-task job of no-op tasks (a -> b -> c, with job parameters, a task value and
    bundle variables to substitute) run through ``demand-forecasting run``, in-process and
    as a fresh process. Per-task overhead = (runner wall time - time inside the task
    functions) / 3; the marginal cost per task is measured with a 30-task job.

Usage:
    .venv/bin/python benchmarks/runner_overhead.py [--repeat 5] [--skip-cold-start]

Prints the figures with the machine and writes them to benchmarks/results/runner_overhead.json.
Nothing is written under the repository's .local/ (state goes to a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from machine_info import machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET_PER_TASK_S = 0.5

#: Seconds spent inside the no-op task functions (read back after each run).
TASK_SECONDS: list[float] = []


# ---------------------------------------------------------------- the no-op tasks
# The bundle below names package_name: runner_overhead, entry_point: noop/produce; the
# runner imports this file as module ``runner_overhead`` (Databricks' package fallback).


def noop() -> None:
    """A task that does nothing but parse its arguments."""
    started = time.perf_counter()
    args = sys.argv[1:]
    assert all(isinstance(a, str) for a in args)
    TASK_SECONDS.append(time.perf_counter() - started)


def produce() -> None:
    """A task that sets one task value."""
    started = time.perf_counter()
    from demand_forecasting.platform.task_values import current_task_values

    current_task_values(on_databricks=False).set("rows", 42)
    TASK_SECONDS.append(time.perf_counter() - started)


# ---------------------------------------------------------------------- the bundle

ROOT_YAML = """\
bundle: {name: overhead}
include: [resources/*.yml]
variables:
  catalog: {default: bench}
  schema: {default: demand_forecasting}
targets:
  dev: {default: true, mode: development}
"""


def job_yaml(tasks: int) -> str:
    """A chain of ``tasks`` tasks: the first sets a task value, the rest read it."""
    lines = [
        "resources:",
        "  jobs:",
        "    bench:",
        "      parameters: [{name: month, default: '2024-01'}]",
        "      tasks:",
        "        - task_key: t0",
        "          python_wheel_task: {package_name: runner_overhead, entry_point: produce}",
    ]
    for index in range(1, tasks):
        lines += [
            f"        - task_key: t{index}",
            f"          depends_on: [{{task_key: t{index - 1}}}]",
            "          python_wheel_task:",
            "            package_name: runner_overhead",
            "            entry_point: noop",
            "            parameters: ['--catalog=${var.catalog}', '--schema=${var.schema}',",
            "                         '--month={{job.parameters.month}}',",
            "                         '--rows={{tasks.t0.values.rows}}']",
        ]
    return "\n".join(lines) + "\n"


def write_bundle(root: Path, tasks: int) -> Path:
    """Write the benchmark bundle with a ``tasks``-task job under ``root``."""
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "databricks.yml").write_text(ROOT_YAML)
    (root / "resources" / "bench.yml").write_text(job_yaml(tasks))
    return root


# ------------------------------------------------------------------- measurements

COLD_START = textwrap.dedent(
    """
    import json, time
    t0 = time.perf_counter()
    from demand_forecasting.platform.context import build_context
    t1 = time.perf_counter()
    ctx = build_context("dev", "bench", "demand_forecasting")
    t2 = time.perf_counter()
    ctx.tables.write(ctx.spark.range(3), "bench.demand_forecasting.cold_start", mode="overwrite")
    assert ctx.tables.read("bench.demand_forecasting.cold_start").count() == 3
    t3 = time.perf_counter()
    ctx.mlflow.search_experiments()
    t4 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "build_context_s": t2 - t1,
                      "first_delta_write_read_s": t3 - t2, "mlflow_first_query_s": t4 - t3}))
    """
)


def cold_start(state: Path) -> dict[str, float]:
    """Time a fresh process from interpreter start to Spark + Delta + MLflow ready."""
    env = {**os.environ, "DEMAND_FORECASTING_HOME": str(state)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", COLD_START],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["process_wall_s"] = wall
    return figures


def run_in_process(root: Path, state: Path) -> tuple[float, float, int]:
    """One ``demand-forecasting run bench`` in this process: (wall, inside tasks, exit)."""
    from demand_forecasting.cli import build_parser

    module = sys.modules.get("runner_overhead")
    if module is not None:
        module.TASK_SECONDS.clear()
    os.environ["DEMAND_FORECASTING_HOME"] = str(state)
    args = build_parser().parse_args(["run", "bench", "--bundle-root", str(root)])
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = int(args._main(args))
    wall = time.perf_counter() - started
    inside = sum(sys.modules["runner_overhead"].TASK_SECONDS)
    return wall, inside, code


def run_fresh_process(root: Path, state: Path) -> float:
    """Wall time of ``python -m demand_forecasting.cli run bench`` in a new process."""
    env = {
        **os.environ,
        "DEMAND_FORECASTING_HOME": str(state),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "demand_forecasting.cli",
            "run",
            "bench",
            "--bundle-root",
            str(root),
        ],
        env=env,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    """Measure, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="in-process runs per job size")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "runner_overhead.json")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))  # so that the runner can import this file as runner_overhead

    results: dict[str, Any] = {"machine": machine(), "measured_at": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory(prefix="runner-overhead-") as tmp:
        tmp_path = Path(tmp)
        if not args.skip_cold_start:
            results["cold_start"] = cold_start(tmp_path / "cold")

        three = write_bundle(tmp_path / "bundle3", 3)
        thirty = write_bundle(tmp_path / "bundle30", 30)
        state = tmp_path / "state"
        first_wall, first_inside, code = run_in_process(three, state)
        assert code == 0, "the benchmark job failed"
        walls3, walls30, insides3 = [], [], []
        for _ in range(args.repeat):
            wall, inside, _ = run_in_process(three, state)
            walls3.append(wall)
            insides3.append(inside)
            walls30.append(run_in_process(thirty, state)[0])
        wall3 = statistics.median(walls3)
        inside3 = statistics.median(insides3)
        results["runner_3_tasks"] = {
            "first_run_wall_s": first_wall,
            "first_run_overhead_per_task_s": (first_wall - first_inside) / 3,
            "median_wall_s": wall3,
            "median_inside_tasks_s": inside3,
            "median_overhead_per_task_s": (wall3 - inside3) / 3,
            "runs": args.repeat,
        }
        wall30 = statistics.median(walls30)
        results["runner_marginal"] = {
            "median_wall_30_tasks_s": wall30,
            "marginal_per_task_s": (wall30 - wall3) / 27,
        }
        fresh = run_fresh_process(three, state)
        results["runner_fresh_process"] = {
            "wall_s": fresh,
            "overhead_per_task_s": fresh / 3,
        }

    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    per_task = results["runner_3_tasks"]["median_overhead_per_task_s"]
    results["target_per_task_s"] = TARGET_PER_TASK_S
    results["meets_target"] = per_task < TARGET_PER_TASK_S
    print(json.dumps(results, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"per-task runner overhead {per_task * 1000:.1f} ms (target < "
        f"{TARGET_PER_TASK_S * 1000:.0f} ms): {'met' if results['meets_target'] else 'MISSED'}"
    )
    print(f"written to {args.output}")
    return 0 if results["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
