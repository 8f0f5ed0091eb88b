"""Process-tree memory sampling survives processes that end while it looks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demand_forecasting.monitoring import memory


def test_a_child_process_counts_in_the_tree() -> None:
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs Linux /proc")
    alone = memory.process_tree_rss_bytes()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for _ in range(50):  # until the child has its interpreter loaded
            if memory.process_tree_rss_bytes() > alone + 1_000_000:
                break
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        assert child.pid in memory._children(os.getpid())
        assert memory.process_tree_rss_bytes() > alone + 1_000_000
    finally:
        child.kill()
        child.wait()


def test_a_process_that_ends_while_its_tasks_are_listed_has_no_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The peak-memory thread crashed with FileNotFoundError: /proc/<pid>/task when a Spark
    # worker exited between the folder's lookup and its listing.
    def vanished(self: Path, pattern: str) -> list[Path]:
        raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "glob", vanished)

    assert memory._children(os.getpid()) == []
