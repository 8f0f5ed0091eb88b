"""Ingest's landing-file checks on a warm month: does their cost grow with the history?

Lands the bundled aus_retail's whole history (or, with ``--dataset synthetic --series N``, a
synthetic one) from 1982-04 to 2018-11, one CSV per month, into a temporary state folder,
ingests it (one Spark run), lands 2018-12, and then times the checks ingest makes before its
stream starts (file rules, rewritten files, cut-short files) on:

- **warm**: all history ingested, one new month file (what every monthly run meets);
- **rerun**: the new month ingested too, nothing new.

Each is timed ``--repeats`` times (page cache warm, as on a second read); it reports the
median and minimum seconds, the landing files the checks opened (an ``open`` audit hook: on a
cloud volume each is a remote GET) and the bytes this process read meanwhile (``rchar``,
checkpoint files included). The whole ``ingest.run`` of the warm month is timed once.

To compare with an older commit, put its ``src`` first on ``PYTHONPATH``: where
``ingest.check_new_landing_files`` does not exist, the script calls the checks as
``ingest.run`` called them at commit 81fdae4 (every landing file read whole, then the tail
of every file read again).

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/landing_checks.py [--repeats N] [--out FILE]
        [--dataset synthetic --series 1520]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from machine_info import machine

HERE = Path(__file__).resolve().parent
HISTORY_END = date(2018, 11, 1)


class OpenCounter:
    """Counts the files opened under one folder (a ``sys.addaudithook`` hook stays installed
    for the process, so it counts only while ``active``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)
        self.active = False
        self.opened = 0
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event == "open" and str(args[0]).startswith(self.folder):
            self.opened += 1


def read_bytes_so_far() -> int:
    """Bytes this process has read through system calls (``rchar``), any file or socket."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def file_checks(ctx: Any, config: Any, folder: Path) -> None:
    """The checks ``ingest.run`` makes before its stream starts, on the code imported."""
    from demand_forecasting import names
    from demand_forecasting.data import ingest

    if hasattr(ingest, "check_new_landing_files"):
        ingest.check_new_landing_files(ctx, config, folder)
        return
    # As ingest.run called them at 81fdae4 (the local platform).
    files = ingest.check_landing_files(folder, config)
    checkpoint = ctx.volume_path(names.CHECKPOINT_VOLUME, names.BRONZE)
    ingest.check_one_dataset(checkpoint, folder, f"{ctx.catalog}.{ctx.schema}")
    ingest.check_unchanged_since_read(checkpoint, files)
    ingest.files_cut_short(files)


def time_checks(ctx: Any, config: Any, folder: Path, repeats: int) -> dict[str, Any]:
    """Median and minimum seconds of :func:`file_checks`, files opened and bytes read."""
    counter = OpenCounter(folder)
    seconds = []
    opened = read = 0
    for _ in range(repeats):
        counter.opened, before = 0, read_bytes_so_far()
        counter.active = True
        started = time.perf_counter()
        file_checks(ctx, config, folder)
        seconds.append(time.perf_counter() - started)
        counter.active = False
        opened, read = counter.opened, read_bytes_so_far() - before
    return {
        "median_s": round(statistics.median(seconds), 4),
        "min_s": round(min(seconds), 4),
        "landing_files_opened": opened,
        "bytes_read": read,
    }


def main() -> None:
    """Build the warm month, time the checks, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dataset", default="aus_retail", help="aus_retail, or synthetic")
    parser.add_argument("--series", type=int, help="synthetic: number of series (1520: 10x)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "landing_checks.json")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.WARNING)
    state = Path(tempfile.mkdtemp(prefix="bench_landing_checks_"))
    os.environ["DEMAND_FORECASTING_HOME"] = str(state)
    info = machine()
    from demand_forecasting import names
    from demand_forecasting.data import ingest
    from demand_forecasting.data.config import load_dataset_config
    from demand_forecasting.data.landing import land
    from demand_forecasting.platform.context import build_context

    try:
        ctx = build_context("dev", "bench", "landing_checks")
        config = load_dataset_config(args.dataset)
        folder = Path(ctx.volume_path(names.LANDING_VOLUME, config.name))
        land(config, folder, until=HISTORY_END, series=args.series)
        print(f"ingesting the history ({len(list(folder.glob('*.csv')))} files) ...", flush=True)
        ingest.run(ctx, ingest.IngestConfig(config))
        land(config, folder, next_month=True, series=args.series)
        files = len(list(folder.glob("*.csv")))
        landing_bytes = sum(p.stat().st_size for p in folder.glob("*.csv"))
        warm = time_checks(ctx, config, folder, args.repeats)
        started = time.perf_counter()
        ingest.run(ctx, ingest.IngestConfig(config))
        warm_ingest_s = time.perf_counter() - started
        rerun = time_checks(ctx, config, folder, args.repeats)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    document = {
        "benchmark": "landing_checks",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "code": "new" if hasattr(ingest, "check_new_landing_files") else "81fdae4 calls",
        "machine": info,
        "dataset": args.dataset,
        "series": args.series,
        "landing_files": files,
        "landing_bytes": landing_bytes,
        "warm_checks": warm,
        "warm_ingest_run_s": round(warm_ingest_s, 2),
        "rerun_checks": rerun,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
