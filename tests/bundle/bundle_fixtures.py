"""Paths and YAML helpers shared by the bundle tests (imported by conftest and tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from demand_forecasting.runner.yaml12 import load as load_yaml12

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT.parent / "shared" / "schemas"
#: What a copy of the bundle needs for the checks (not src/: entry points come from pyproject).
BUNDLE_PATHS = ("databricks.yml", "resources", ".azure-pipelines", "pyproject.toml")
MONTHLY_JOB = "monthly"


def edit_yaml(path: Path, change: Callable[[Any], object]) -> None:
    """Load ``path`` (YAML 1.2 scalars), let ``change`` edit it in place, write it back.

    Whatever ``change`` returns is ignored (so ``lambda d: d[...].pop(...)`` works).
    """
    data = load_yaml12(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def job_file(root: Path, job_key: str = MONTHLY_JOB) -> Path:
    """The resources file that defines ``job_key``; fails if no file does."""
    for path in sorted((root / "resources").glob("*.yml")):
        data = load_yaml12(path.read_text(encoding="utf-8")) or {}
        if job_key in ((data.get("resources") or {}).get("jobs") or {}):
            return path
    pytest.fail(
        f"no file under resources/ defines job '{job_key}'; the monthly job is "
        "required by DESIGN.md"
    )
