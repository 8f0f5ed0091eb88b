"""Shared fixtures: one local Spark session with Delta for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Use a Spark class archive the machine has, but never record one: no test leaves a background
# builder behind (tests/test_jvm_archive.py builds one in its own folder).
os.environ.setdefault("DEMAND_FORECASTING_SPARK_ARCHIVE", "use")


@pytest.fixture(scope="session")
def spark_scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spark's own scratch folder for the test session."""
    return tmp_path_factory.mktemp("spark")


@pytest.fixture(scope="session")
def spark(spark_scratch: Path) -> Iterator[object]:
    """The local Delta-enabled Spark session (UI off, few shuffle partitions), started once."""
    from demand_forecasting.platform.spark import get_spark

    session = get_spark(on_databricks=False, scratch_dir=spark_scratch)
    yield session


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local state folder (warehouse, volumes, MLflow) for one test."""
    home = tmp_path / "state"
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(home))
    return home


@pytest.fixture
def ctx(spark: object, state_dir: Path):  # type: ignore[no-untyped-def]
    """A run context on the shared Spark session with its own tables and MLflow store."""
    from demand_forecasting.platform.context import build_context

    return build_context("dev", "main", "demand_forecasting", state_dir=state_dir)
