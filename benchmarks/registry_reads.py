"""Registry reads per segment over HTTP: check_drift's lookups one after another vs pooled.

Starts a real ``mlflow server`` (sqlite backend in a temporary folder, on a free loopback
port), so that every call is an HTTP request as on Databricks, registers ``--segments``
segment models (each a training run with its ``horizon`` param and a version with the
champion alias and lineage tags; every fourth also a newer refused version), then times the
registry reads check_drift makes (:func:`~demand_forecasting.monitoring.champions.
find_champions`: the champion alias and its training run per segment;
:func:`~demand_forecasting.monitoring.champions.recently_refused`: the versions of each
segment) with ``REGISTRY_READ_THREADS`` set to each of ``--threads`` (1 is the old way: one
call after another in the task's thread). Runs alternate between the settings, ``--repeat``
rounds. The same reads straight from the server's sqlite file (no HTTP) are timed too.

A loopback server answers in milliseconds; Databricks' registry takes ~0.1-0.2 s a call, so
the gain there is larger than here (see benchmarks/README.md, *Registry reads*).

Usage:
    .venv/bin/python benchmarks/registry_reads.py [--segments 200] [--repeat 3]
        [--threads 1 8] [--output FILE]

Prints the figures with the machine and writes benchmarks/results/registry_reads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from demand_forecasting.models import registry as registry_module
from demand_forecasting.models.registry import CHAMPION, VALIDATION_STATUS, SegmentRegistry
from demand_forecasting.monitoring.champions import find_champions, recently_refused
from machine_info import machine

HERE = Path(__file__).resolve().parent
CATALOG, SCHEMA, PREFIX = "bench", "demand_forecasting", "demand"
RUN_MONTH = date(2016, 1, 1)
#: Registry calls per segment in the timed lookups: alias, run, version search.
CALLS_PER_SEGMENT = 3


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(folder: Path, port: int, serve_artifacts: bool = False) -> subprocess.Popen[bytes]:
    """``mlflow server`` on ``folder/mlflow.db``, in a session of its own (its workers are
    stopped with it); returns once it answers ``/health``. With ``serve_artifacts`` the
    server keeps the artifacts in ``folder/artifacts`` and clients read and write them over
    HTTP (``mlflow-artifacts:``) as they would a remote store; otherwise runs name that
    folder itself and clients copy files there directly."""
    mlflow = Path(sys.executable).with_name("mlflow")
    artifacts = (
        ["--serve-artifacts", "--artifacts-destination", str(folder / "artifacts")]
        if serve_artifacts
        else ["--default-artifact-root", str(folder / "artifacts")]
    )
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            *artifacts,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=(folder / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow server exited ({server.returncode}): see {folder}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise SystemExit("mlflow server did not answer /health within 180 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and the workers it started (its own process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def register_segments(client: MlflowClient, segments: list[str]) -> None:
    """Each segment: a training run and a champion version; every fourth also a newer
    version that validation refused (what ``recently_refused`` looks for)."""
    registry = SegmentRegistry(client, CATALOG, SCHEMA, PREFIX)
    experiment = client.create_experiment("registry-reads")

    def version(segment: str, **tags: str) -> str:
        run = client.create_run(experiment)
        client.log_param(run.info.run_id, "horizon", "12")
        created: Any = client.create_model_version(
            registry.name(segment), source=run.info.artifact_uri, run_id=run.info.run_id, tags=tags
        )
        return str(created.version)

    def register(index_segment: tuple[int, str]) -> None:
        index, segment = index_segment
        registry.ensure_model(segment)
        champion = version(
            segment,
            training_table=f"{CATALOG}.{SCHEMA}.features",
            training_table_version="7",
            trained_until="2015-11-01",
        )
        registry.set_alias(segment, CHAMPION, champion)
        if index % 4 == 0:
            version(segment, **{VALIDATION_STATUS: "refused", "trained_until": "2016-01-01"})

    # Set-up only: the benchmark's own writes go 8 at a time to save minutes.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(register, enumerate(segments)))


def check_drift_lookups(client: MlflowClient, segments: list[str]) -> tuple[int, int]:
    """The registry reads of check_drift: champions with their horizon, then refusals."""
    champions = find_champions(client, CATALOG, SCHEMA, PREFIX, segments)
    refused = recently_refused(client, CATALOG, SCHEMA, PREFIX, segments, RUN_MONTH, 1)
    return len(champions), len(refused)


def timed(threads: int, lookups: Callable[[], tuple[int, int]]) -> tuple[float, tuple[int, int]]:
    """Wall seconds of ``lookups`` with ``REGISTRY_READ_THREADS = threads``."""
    kept = registry_module.REGISTRY_READ_THREADS
    registry_module.REGISTRY_READ_THREADS = threads
    try:
        started = time.perf_counter()
        found = lookups()
        return time.perf_counter() - started, found
    finally:
        registry_module.REGISTRY_READ_THREADS = kept


def measure(
    name: str, client: MlflowClient, segments: list[str], threads: list[int], repeat: int
) -> dict[str, Any]:
    """Alternate the thread settings ``repeat`` rounds; medians and every run."""
    runs: dict[int, list[float]] = {t: [] for t in threads}
    answers = set()
    timed(threads[-1], lambda: check_drift_lookups(client, segments))  # connections, caches
    for _ in range(repeat):
        for t in threads:
            seconds, found = timed(t, lambda: check_drift_lookups(client, segments))
            runs[t].append(round(seconds, 3))
            answers.add(found)
    if len(answers) != 1:
        raise SystemExit(f"{name}: the settings found different champions/refusals: {answers}")
    calls = CALLS_PER_SEGMENT * len(segments)
    result: dict[str, Any] = {"champions_and_refusals_found": sorted(answers)[0], "calls": calls}
    for t in threads:
        median = statistics.median(runs[t])
        result[f"threads_{t}"] = {
            "median_s": round(median, 3),
            "runs_s": runs[t],
            "ms_per_call": round(1000 * median / calls, 2),
        }
    base = result[f"threads_{threads[0]}"]["median_s"]
    for t in threads[1:]:
        result[f"threads_{t}"]["speedup"] = round(base / result[f"threads_{t}"]["median_s"], 2)
    print(f"{name}: {len(segments)} segments, {calls} calls", flush=True)
    for t in threads:
        figures = result[f"threads_{t}"]
        print(
            f"  {t} thread(s): median {figures['median_s']:.2f} s "
            f"({figures['ms_per_call']:.1f} ms a call), runs {figures['runs_s']}"
            + (f", {figures['speedup']}x" if "speedup" in figures else ""),
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--output", type=Path, default=HERE / "results" / "registry_reads.json")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    segments = [f"segment_{i:04d}" for i in range(args.segments)]
    results: dict[str, Any] = {
        "benchmark": "registry_reads",
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "segments": args.segments,
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory(prefix="registry-reads-") as scratch:
        folder = Path(scratch)
        port = free_port()
        started = time.perf_counter()
        server = start_server(folder, port)
        results["server_start_s"] = round(time.perf_counter() - started, 1)
        try:
            url = f"http://127.0.0.1:{port}"
            client = MlflowClient(tracking_uri=url, registry_uri=url)
            started = time.perf_counter()
            register_segments(client, segments)
            results["register_s"] = round(time.perf_counter() - started, 1)
            print(f"registered {args.segments} segments in {results['register_s']} s", flush=True)
            results["http"] = measure(
                "mlflow server (HTTP)", client, segments, args.threads, args.repeat
            )
            sqlite = f"sqlite:///{folder / 'mlflow.db'}"
            direct = MlflowClient(tracking_uri=sqlite, registry_uri=sqlite)
            results["sqlite"] = measure(
                "sqlite file (no HTTP)", direct, segments, args.threads, args.repeat
            )
        finally:
            stop_server(server)
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results["machine"]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
