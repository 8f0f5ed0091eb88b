"""Where local state lives and how the platform is detected."""

from __future__ import annotations

from pathlib import Path

import pytest

from demand_forecasting.platform.detect import on_databricks
from demand_forecasting.platform.paths import STATE_DIR_ENV, default_state_dir, find_bundle_root


def test_state_dir_defaults_to_dot_local_beside_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    (tmp_path / "databricks.yml").write_text("bundle: {name: x}\n")
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    assert find_bundle_root(nested) == tmp_path.resolve()
    assert default_state_dir(nested) == tmp_path.resolve() / ".local"


def test_state_dir_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert default_state_dir(tmp_path) == (tmp_path / "elsewhere").resolve()


def test_databricks_is_detected_from_the_runtime_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert not on_databricks()
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    assert on_databricks()
