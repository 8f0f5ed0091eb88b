"""Task values: a refusal from dbutils names the call and the fix; values over Databricks'
48 KiB are refused locally and on Databricks, naming the task, the key and the size."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import pytest
from databricks.sdk.dbutils import _JobsUtil

from demand_forecasting.platform.task_values import (
    MAX_VALUE_BYTES,
    DatabricksTaskValues,
    LocalTaskValues,
    TaskValuesUnavailableError,
    TaskValueTooLargeError,
)


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


def _runtime(
    monkeypatch: pytest.MonkeyPatch, task_values: object, *, local_implementation: bool = False
) -> None:
    # databricks.sdk.runtime takes the runtime's dbutils only on a cluster (importing it here
    # would configure a workspace client); this module stands in for it. With
    # local_implementation it is what the SDK becomes without the runtime's namespace.
    module = types.ModuleType("databricks.sdk.runtime")
    module.is_local_implementation = local_implementation  # type: ignore[attr-defined]
    module.dbutils = types.SimpleNamespace(jobs=types.SimpleNamespace(taskValues=task_values))  # type: ignore[attr-defined]
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


def test_the_sdk_stand_in_whose_set_drops_the_value_is_refused_naming_key_and_fix() -> None:
    # What databricks.sdk.runtime hands out without the runtime's namespace: its set() is a
    # no-op, so retrain_count would vanish and retrain_needed could not resolve.
    stand_in = _JobsUtil().taskValues
    values = DatabricksTaskValues(stand_in)

    with pytest.raises(TaskValuesUnavailableError) as refused:
        values.set("retrain_count", 3)

    message = str(refused.value)
    assert "taskValues.set('retrain_count')" in message
    assert "local stand-in" in message
    assert "compute: classic" in message and "python_wheel_wrapper: true" in message


def test_without_the_runtime_namespace_or_pyspark_dbutils_set_fails_instead_of_dropping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _StoringTaskValues()
    _runtime(monkeypatch, store, local_implementation=True)
    monkeypatch.setitem(sys.modules, "pyspark.dbutils", None)  # open-source pyspark has none

    with pytest.raises(TaskValuesUnavailableError, match=r"set\('retrain_count'\)"):
        DatabricksTaskValues().set("retrain_count", 2)

    assert store.values == {}


def _segments(count: int) -> list[str]:
    """Segment names as a customer's estate has them (~40 characters each)."""
    return [f"region_{i % 40:02d}__category_of_products_{i:05d}" for i in range(count)]


def test_the_local_store_refuses_a_value_over_48_kib_naming_task_key_size_and_limit() -> None:
    store = LocalTaskValues()
    segments = _segments(1_500)
    size = len(json.dumps(segments).encode())
    assert size > MAX_VALUE_BYTES  # ~1,500 segments are more than Databricks accepts

    with store.running("check_drift"), pytest.raises(TaskValueTooLargeError) as refused:
        store.set("segments_to_train", segments)

    message = str(refused.value)
    assert f"task value check_drift.segments_to_train is {size:,} bytes" in message
    assert "at most 49,152 (48 KiB)" in message
    assert "hand-over table" in message
    assert store.values == {}  # nothing half-set
    with store.running("check_drift"):
        store.set("retrain_count", len(segments))  # a scalar passes
    assert store.values == {"check_drift": {"retrain_count": 1_500}}


def test_the_limit_is_on_the_json_size_at_exactly_48_kib() -> None:
    store = LocalTaskValues()
    at_limit = "x" * (MAX_VALUE_BYTES - 2)  # two quotes make it exactly 48 KiB of JSON
    with store.running("t"):
        store.set("fits", at_limit)
        with pytest.raises(TaskValueTooLargeError):
            store.set("too_big", at_limit + "x")
    assert list(store.values["t"]) == ["fits"]


def test_databricks_values_over_48_kib_are_refused_before_dbutils_is_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _StoringTaskValues()
    _runtime(monkeypatch, store)

    with pytest.raises(TaskValueTooLargeError, match="segments_to_train is"):
        DatabricksTaskValues().set("segments_to_train", _segments(1_500))

    assert store.values == {}
