"""The machine a benchmark ran on, recorded beside its figures (shared by the scripts here)."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Cores, memory, Python, Java, CPU model and OS of this machine, and how busy it is."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        memory_gb = round(kb / 1024 / 1024, 1)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return {
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "cpu": cpu,
        "os": platform.platform(),
        "java": (java.stderr.splitlines() or ["unknown"])[0],
        # The machine may be shared: a load above the core count slows every figure.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
