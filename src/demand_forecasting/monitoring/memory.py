"""Peak memory of this process and its children while a task runs.

Locally the Spark JVM and its Python workers are children of the task's process, so the
resident memory of the whole process tree is what the machine pays. On Databricks the
driver's Python process is the JVM's child, so the tree is that process alone. Linux reads
``/proc``; elsewhere the process's own peak (``getrusage``) is the fallback.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from pathlib import Path
from types import TracebackType

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    try:  # listing the task folder fails if the process ends while it is being listed
        tasks = list((_PROC / str(pid) / "task").glob("*/children"))
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found.extend(int(c) for c in task.read_text().split())
        except OSError:  # the thread or process ended while we looked
            continue
    return found


def _rss_bytes(pid: int) -> int:
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def process_tree_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of ``pid`` (default: this process) and all its descendants."""
    root = os.getpid() if pid is None else pid
    if not (_PROC / str(root)).is_dir():
        return own_peak_rss_bytes()
    total, pending, seen = 0, [root], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _rss_bytes(current)
        pending.extend(_children(current))
    return total


def own_peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (``getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class PeakMemorySampler:
    """Samples the process tree's memory in a daemon thread; ``peak_bytes`` is the maximum.

    Use as a context manager around the work to measure. Sampling every ``interval_s``
    (default 0.25 s) costs well under 1% of a core.
    """

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, process_tree_rss_bytes())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakMemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    @property
    def peak_mb(self) -> float:
        """The peak in MiB."""
        return self.peak_bytes / 2**20
