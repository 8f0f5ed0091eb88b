"""Task values on Databricks: a refusal from dbutils names the task-value call and the fix."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from demand_forecasting.platform.task_values import DatabricksTaskValues


class _RefusingTaskValues:
    def set(self, key: str, value: Any) -> None:
        raise ValueError("Task values are not supported in this context")

    def get(self, taskKey: str, key: str, default: Any = None) -> Any:
        raise ValueError("Task values are not supported in this context")


class _StoringTaskValues:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def get(self, taskKey: str, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _runtime(monkeypatch: pytest.MonkeyPatch, task_values: object) -> None:
    # databricks.sdk.runtime exists only on a cluster; this stands in for its dbutils.
    module = types.ModuleType("databricks.sdk.runtime")
    module.dbutils = types.SimpleNamespace(jobs=types.SimpleNamespace(taskValues=task_values))
    monkeypatch.setitem(sys.modules, "databricks.sdk.runtime", module)


def test_values_go_through_dbutils(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _StoringTaskValues()
    _runtime(monkeypatch, store)
    values = DatabricksTaskValues()

    values.set("segments_to_train", ["a", "b"])

    assert store.values == {"segments_to_train": ["a", "b"]}
    assert values.get("check_drift", "segments_to_train") == ["a", "b"]
    assert values.get("check_drift", "missing", 3) == 3


def test_a_refused_set_or_get_names_the_call_and_the_wrapper_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _runtime(monkeypatch, _RefusingTaskValues())
    values = DatabricksTaskValues()

    with pytest.raises(RuntimeError) as refused_set:
        values.set("retrain_count", 3)
    with pytest.raises(RuntimeError) as refused_get:
        values.get("train", "candidates")

    assert "taskValues.set('retrain_count') failed" in str(refused_set.value)
    assert "python_wheel_wrapper: true" in str(refused_set.value)
    assert "not supported in this context" in str(refused_set.value)
    assert "taskValues.get('train', 'candidates') failed" in str(refused_get.value)
