"""Champion downloads into the score task's model cache over HTTP: one after another vs pooled.

Starts a real ``mlflow server`` with ``--serve-artifacts`` (sqlite backend and artifacts in
a temporary folder, on a free loopback port), so that the registry calls *and* the artifact
listings and file downloads are HTTP requests, as on Databricks (REST, then cloud storage).
Fits one small real segment forecaster, logs it as the train task's pyfunc into a local
store, and logs a copy of that model folder to a run of the server per segment, registered
as the segment's champion (``--segments`` of them). Then times
:func:`~demand_forecasting.scoring.champion_models.champions` into an empty model cache
(every champion downloaded: the first score run after a deployment or a full retrain) with
``REGISTRY_READ_THREADS`` set to each of ``--threads`` (1 is the old way), alternating,
``--repeat`` rounds, and once more into a full cache (every folder already there: a usual
run). Every setting must leave the same files.

A loopback server has no network latency, and its workers share the machine's cores with
the client: the gain on Databricks, where a download waits ~1 s on REST and cloud storage,
is not measured here (see benchmarks/README.md, *Model downloads*).

Usage:
    .venv/bin/python benchmarks/model_downloads.py [--segments 100] [--repeat 3]
        [--threads 1 8] [--output FILE]

Prints the figures with the machine and writes benchmarks/results/model_downloads.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from demand_forecasting.models import registry as registry_module
from demand_forecasting.models.forecaster import fit_forecaster
from demand_forecasting.models.pyfunc import log_forecaster
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.registry import CHAMPION, SegmentRegistry
from demand_forecasting.platform.mlflow_setup import configure_mlflow, local_store
from demand_forecasting.scoring.champion_models import ChampionModel, champions
from machine_info import machine
from registry_reads import free_port, start_server, stop_server

HERE = Path(__file__).resolve().parent
CATALOG, SCHEMA, PREFIX = "bench", "demand_forecasting", "demand"


def champion_folder(scratch: Path) -> Path:
    """A real champion's model folder: a forecaster fitted on 8 synthetic series of 4 years
    (horizon 12), logged as the train task's pyfunc to a local store and downloaded."""
    months = pd.date_range("2012-01-01", "2015-12-01", freq="MS")
    rng = np.random.default_rng(7)
    history = pd.DataFrame(
        [
            (
                f"s{s}",
                month,
                100 * (s + 1) * (1 + 0.2 * np.sin(i / 12 * 2 * np.pi)) * rng.normal(1, 0.05),
            )
            for s in range(8)
            for i, month in enumerate(months)
        ],
        columns=["series_id", "month", "y"],
    )
    forecaster = fit_forecaster(history, Recipe())
    forecaster.to_files(scratch / "forecaster")
    store = local_store(scratch / "local-mlflow")
    client = configure_mlflow(store)
    experiment = client.create_experiment("model-downloads", store.artifact_root)
    run = client.create_run(experiment)
    uri = log_forecaster(
        scratch / "forecaster", history.head(30), run=(experiment, run.info.run_id)
    )
    folder = scratch / "champion"
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder))
    return folder


def register_segments(client: MlflowClient, segments: list[str], folder: Path) -> None:
    """Each segment: a run holding a copy of ``folder`` (uploaded over HTTP) registered as
    its champion."""
    registry = SegmentRegistry(client, CATALOG, SCHEMA, PREFIX)
    experiment = client.create_experiment("model-downloads")

    def register(segment: str) -> None:
        name = registry.ensure_model(segment)
        run = client.create_run(experiment)
        client.log_artifacts(run.info.run_id, str(folder), "model")
        version: Any = client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        registry.set_alias(segment, CHAMPION, str(version.version))

    # Set-up only: 8 at a time to save minutes.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(register, segments))


def fingerprint(found: dict[str, ChampionModel]) -> str:
    """One hash of every champion's files (names and bytes), in segment order."""
    digest = hashlib.sha256()
    for segment, model in found.items():
        root = Path(model.folder)
        digest.update(segment.encode())
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def timed_champions(
    threads: int, root: Path, registry: SegmentRegistry, versions: dict[str, ModelVersion]
) -> tuple[float, dict[str, ChampionModel]]:
    """Wall seconds of ``champions`` into the model cache under ``root`` with
    ``REGISTRY_READ_THREADS = threads``."""
    ctx: Any = SimpleNamespace(
        volume_path=lambda volume, *parts: str(root.joinpath(volume, *parts))
    )
    kept = registry_module.REGISTRY_READ_THREADS
    registry_module.REGISTRY_READ_THREADS = threads
    try:
        started = time.perf_counter()
        found = champions(ctx, registry, versions)
        return time.perf_counter() - started, found
    finally:
        registry_module.REGISTRY_READ_THREADS = kept


def measure(
    registry: SegmentRegistry,
    versions: dict[str, ModelVersion],
    threads: list[int],
    repeat: int,
    scratch: Path,
) -> dict[str, Any]:
    """Alternate the thread settings ``repeat`` rounds into empty caches, then once each into
    a full one; medians and every run."""
    cold: dict[int, list[float]] = {t: [] for t in threads}
    warm: dict[int, float] = {}
    prints = set()
    timed_champions(threads[-1], scratch / "warm-up", registry, versions)  # connections
    for round_ in range(repeat):
        for t in threads:
            root = scratch / f"cache-{round_}-{t}"
            seconds, found = timed_champions(t, root, registry, versions)
            cold[t].append(round(seconds, 3))
            prints.add(fingerprint(found))
            if round_ == repeat - 1:
                warm[t] = round(timed_champions(t, root, registry, versions)[0], 3)
    if len(prints) != 1:
        raise SystemExit(f"the settings left different model caches: {prints}")
    result: dict[str, Any] = {}
    for t in threads:
        median = statistics.median(cold[t])
        result[f"threads_{t}"] = {
            "empty_cache_median_s": round(median, 3),
            "empty_cache_runs_s": cold[t],
            "ms_per_model": round(1000 * median / len(versions), 1),
            "full_cache_s": warm[t],
        }
    base = result[f"threads_{threads[0]}"]["empty_cache_median_s"]
    for t in threads[1:]:
        figures = result[f"threads_{t}"]
        figures["speedup"] = round(base / figures["empty_cache_median_s"], 2)
    for t in threads:
        figures = result[f"threads_{t}"]
        print(
            f"  {t} thread(s): empty cache median {figures['empty_cache_median_s']:.2f} s "
            f"({figures['ms_per_model']:.0f} ms a model), runs {figures['empty_cache_runs_s']}"
            + (f", {figures['speedup']}x" if "speedup" in figures else "")
            + f"; full cache {figures['full_cache_s']:.2f} s",
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--output", type=Path, default=HERE / "results" / "model_downloads.json")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    segments = [f"segment_{i:04d}" for i in range(args.segments)]
    results: dict[str, Any] = {
        "benchmark": "model_downloads",
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "segments": args.segments,
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory(prefix="model-downloads-") as scratch_dir:
        scratch = Path(scratch_dir)
        folder = champion_folder(scratch)
        files = [p for p in folder.rglob("*") if p.is_file()]
        results["model_files"] = len(files)
        results["model_kb"] = round(sum(p.stat().st_size for p in files) / 1024, 1)
        print(f"a champion: {len(files)} files, {results['model_kb']} kB", flush=True)
        server_folder = scratch / "server"
        server_folder.mkdir()
        port = free_port()
        server = start_server(server_folder, port, serve_artifacts=True)
        try:
            url = f"http://127.0.0.1:{port}"
            # The downloads go through the process's MLflow, as the score task's do.
            mlflow.set_tracking_uri(url)
            mlflow.set_registry_uri(url)
            client = MlflowClient(tracking_uri=url, registry_uri=url)
            started = time.perf_counter()
            register_segments(client, segments, folder)
            results["register_s"] = round(time.perf_counter() - started, 1)
            print(f"registered {args.segments} champions in {results['register_s']} s", flush=True)
            registry = SegmentRegistry(client, CATALOG, SCHEMA, PREFIX)
            versions = registry.segments_with(segments, CHAMPION)
            source = client.get_model_version_download_uri(registry.name(segments[0]), "1")
            if not source.startswith("mlflow-artifacts:"):
                raise SystemExit(f"artifacts are not served over HTTP: {source}")
            print(f"mlflow server (HTTP, served artifacts): {args.segments} champions", flush=True)
            results["http"] = measure(registry, versions, args.threads, args.repeat, scratch)
        finally:
            stop_server(server)
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results["machine"]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
