"""A job's ``max_concurrent_runs`` across local processes, as Databricks Jobs enforce it.

On Databricks a run that would exceed ``max_concurrent_runs`` is skipped, or waits in the
job's queue when ``queue.enabled`` is true. The local runner does the same with one lock file
per run slot under the state folder (``runs/locks/<target>.<job>.<slot>.lock``), held with
``flock`` for the whole run: two ``demand-forecasting run monthly`` started at once would
otherwise write the same Delta tables, stream checkpoints and registry aliases together.
The operating system releases a lock when its process ends, however it ends, so a killed run
never leaves a stale lock behind. Each held lock file names its run (pid, run id, start) so
that a skipped run can say which run it met.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

try:  # POSIX only; elsewhere runs are not limited across processes (logged once).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: How often a queued run looks for a free slot, and how often it says it is still waiting.
POLL_SECONDS = 2.0
WAIT_LOG_SECONDS = 60.0


@dataclass(frozen=True)
class Holder:
    """The run holding a slot, as its lock file names it."""

    pid: int
    run_id: int
    started_at: str

    def describe(self) -> str:
        """``run 123 (pid 4567, started 2026-11-28T11:02:03+00:00)``."""
        run = f"run {self.run_id}" if self.run_id else "a run being planned"
        return f"{run} (pid {self.pid}, started {self.started_at})"


class RunSlot:
    """A held slot; :meth:`release` (or process exit) frees it."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    def claim(self, run_id: int, started: datetime) -> None:
        """Name the run holding the slot in its lock file (what a skipped run reports)."""
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.write(
                json.dumps(
                    {"pid": os.getpid(), "run_id": run_id, "started_at": started.isoformat()}
                )
            )
            self._handle.flush()

    def release(self) -> None:
        """Free the slot (idempotent)."""
        if self._handle is not None:
            self._handle.close()  # closing the file drops its flock
            self._handle = None


class RunSlots:
    """The run slots of the jobs run from one local state folder.

    Args:
        folder: where the lock files live (created on first use).
        sleep, monotonic: time functions (tests pass fakes).
    """

    def __init__(
        self,
        folder: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.sleep = sleep
        self.monotonic = monotonic

    def _path(self, target: str, job_key: str, slot: int) -> Path:
        return self.folder / f"{target}.{job_key}.{slot}.lock"

    def try_acquire(
        self, target: str, job_key: str, limit: int, run_id: int, started: datetime
    ) -> RunSlot | list[Holder]:
        """A free slot of the ``limit`` the job has, or the runs holding all of them."""
        if fcntl is None:  # pragma: no cover - Windows
            log.warning("max_concurrent_runs is not enforced locally on this platform")
            return RunSlot(None)
        self.folder.mkdir(parents=True, exist_ok=True)
        holders: list[Holder] = []
        for index in range(limit):
            path = self._path(target, job_key, index)
            # "a+" creates the file without truncating what its holder wrote.
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = _holder(handle.read())
                handle.close()
                if holder is not None:
                    holders.append(holder)
                continue
            held = RunSlot(handle)
            held.claim(run_id, started)
            return held
        return holders

    def acquire(
        self,
        target: str,
        job_key: str,
        limit: int,
        run_id: int,
        started: datetime,
        *,
        queue: bool,
    ) -> RunSlot | list[Holder]:
        """A slot; with ``queue`` wait for one, else return the holders at once (skip)."""
        if limit < 1:
            return []
        waited_from = self.monotonic()
        told: float | None = None
        while True:
            got = self.try_acquire(target, job_key, limit, run_id, started)
            if isinstance(got, RunSlot) or not queue:
                if isinstance(got, RunSlot) and told is not None:
                    log.info(
                        "job %s: a run slot is free after %.0fs in the queue",
                        job_key,
                        self.monotonic() - waited_from,
                    )
                return got
            now = self.monotonic()
            if told is None or now - told >= WAIT_LOG_SECONDS:
                told = now
                log.info(
                    "job %s: queued behind %s (max_concurrent_runs %d)",
                    job_key,
                    "; ".join(h.describe() for h in got) or "another process",
                    limit,
                )
            self.sleep(POLL_SECONDS)


def _holder(text: str) -> Holder | None:
    try:
        data: dict[str, Any] = json.loads(text)
        return Holder(int(data["pid"]), int(data["run_id"]), str(data["started_at"]))
    except (ValueError, KeyError, TypeError):
        return None


def skipped_message(job_key: str, limit: int, holders: list[Holder]) -> str:
    """Why a run was skipped, and what to do."""
    if limit < 1:
        return f"job '{job_key}' has max_concurrent_runs {limit}: every run is skipped"
    running = "; ".join(h.describe() for h in holders) or "another process"
    return (
        f"job '{job_key}' already has {limit} run(s) in progress (max_concurrent_runs "
        f"{limit}): {running}. This run was skipped, as Databricks skips it; wait for that "
        "run to end (or stop it), then run again, or set queue.enabled on the job to wait"
    )
