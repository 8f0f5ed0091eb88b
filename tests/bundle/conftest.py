"""Fixtures for the bundle tests: the repository, its schemas, copies to mutate, the wheel.

Nothing here starts Spark: these tests read YAML, JSON schemas and a built wheel only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_fixtures import BUNDLE_PATHS, REPO_ROOT, SCHEMAS_DIR

from demand_forecasting.bundle_checks.schemas import BUNDLE_SCHEMA, PIPELINES_SCHEMA
from demand_forecasting.runner import Bundle, load_bundle


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository under test."""
    return REPO_ROOT


def _schema(name: str) -> Path:
    path = SCHEMAS_DIR / name
    if not path.is_file():
        pytest.skip(
            f"official JSON schema {name} not found in {SCHEMAS_DIR} (shared/schemas "
            "beside the repository); this schema validation cannot run here"
        )
    return path


@pytest.fixture(scope="session")
def bundle_schema() -> Path:
    """``<repo>/../shared/schemas/databricks-bundle.schema.json``, or skip saying why."""
    return _schema(BUNDLE_SCHEMA)


@pytest.fixture(scope="session")
def pipelines_schema() -> Path:
    """``<repo>/../shared/schemas/azure-pipelines.schema.json``, or skip saying why."""
    return _schema(PIPELINES_SCHEMA)


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A copy of the repository's bundle and pipelines to mutate."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in BUNDLE_PATHS:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        elif source.is_file():
            shutil.copy2(source, root / name)
    return root


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session from a copy of the sources.

    Built the way CI builds it (``python -m build --wheel``, isolated), in a temporary copy so
    that the work tree gets no build/ or egg-info.
    """
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src-copy"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "src"):
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(
                path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        elif path.is_file():
            shutil.copy2(path, source / name)
    out = work / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wheels = sorted(out.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        pytest.fail(
            f"python -m build --wheel failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return wheels[0]


@pytest.fixture
def prod_bundle(repo_root: Path) -> Bundle:
    """The prod target as the CD pipeline deploys it (its service principal, alert mailbox)."""
    return load_bundle(
        repo_root,
        "prod",
        environ={"BUNDLE_VAR_alert_email": "alerts@example.com"},
        user_name="11111111-2222-3333-4444-555555555555",
    )
