"""Task values: small JSON values a task sets for later tasks of the same job run.

On Databricks they go through ``dbutils.jobs.taskValues``; under the local runner through
the run's in-memory store, which the runner makes current while a task runs. Outside both
(an entry point started by hand) values are kept in memory and logged.

Databricks refuses a value whose JSON exceeds 48 KiB (:data:`MAX_VALUE_BYTES`); both stores
refuse it here first, naming the task and the key. Task values carry small scalars (counts,
the run month); what grows with the number of segments goes through the job run's hand-over
table (:mod:`demand_forecasting.platform.handover`).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Databricks: "The size of the JSON representation of the value cannot exceed 48 KiB"
#: (docs.databricks.com/jobs/task-values.html).
MAX_VALUE_BYTES = 48 * 1024


class TaskValueTooLargeError(ValueError):
    """A task value whose JSON exceeds what Databricks accepts."""


def check_value(task: str, key: str, value: Any) -> str:
    """The JSON of ``value``, refused when Databricks would refuse it.

    Raises:
        TypeError: ``value`` is not JSON-serialisable.
        TaskValueTooLargeError: its JSON exceeds :data:`MAX_VALUE_BYTES`.
    """
    text = json.dumps(value)
    size = len(text.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise TaskValueTooLargeError(
            f"task value {task}.{key} is {size:,} bytes of JSON; Databricks accepts at most "
            f"{MAX_VALUE_BYTES:,} (48 KiB). Publish values that grow with the number of "
            "segments through the job run's hand-over table "
            "(demand_forecasting.platform.handover) and keep task values to small scalars"
        )
    return text


class TaskValues(Protocol):
    """What a task may do with task values."""

    def set(self, key: str, value: Any) -> None:
        """Publish ``value`` (JSON-serialisable) under ``key`` for downstream tasks."""

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        """Read ``key`` set by upstream task ``task_key``, or ``default``."""


class LocalTaskValues:
    """Task values of one local job run: ``{task_key: {key: value}}``."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self._current_task: str | None = None

    def set(self, key: str, value: Any) -> None:
        task = self._current_task or "<no task>"
        text = check_value(task, key, value)  # Databricks' rules: JSON, at most 48 KiB
        self.values.setdefault(task, {})[key] = value
        log.info("task value %s.%s = %s", task, key, text[:200])

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        return self.values.get(task_key, {}).get(key, default)

    @contextmanager
    def running(self, task_key: str) -> Iterator[LocalTaskValues]:
        """Make this store current for ``task_key`` while the task runs in this process."""
        token = _ACTIVE.set(self)
        previous, self._current_task = self._current_task, task_key
        try:
            yield self
        finally:
            self._current_task = previous
            _ACTIVE.reset(token)


class TaskValuesUnavailableError(RuntimeError):
    """This Databricks process has no ``dbutils`` that can set task values."""


class DatabricksTaskValues:
    """``dbutils.jobs.taskValues`` of the running Databricks job.

    Databricks documents ``dbutils.jobs.taskValues.set``/``get`` for Python notebooks only
    ("Use task values to pass information between tasks",
    https://docs.databricks.com/jobs/task-values.html); every task here is a
    ``python_wheel_task``. The runtime's own ``dbutils`` is found the way the Databricks SDK
    finds it (:func:`runtime_task_values`); where there is none, the SDK hands out a stand-in
    whose ``set`` does nothing (``databricks.sdk.dbutils._JobsUtil._TaskValuesUtil``, for
    local debugging), which would lose ``retrain_count`` silently and leave the condition
    task ``retrain_needed`` unresolvable. That stand-in is refused: ``set`` then fails,
    naming the value and the fix.
    """

    def __init__(self, task_values: Any = None) -> None:
        """``task_values``: the ``dbutils.jobs.taskValues`` to use (found on first use)."""
        self._task_values = task_values

    def _store(self, call: str) -> Any:
        if self._task_values is None:
            self._task_values = runtime_task_values()
        if self._task_values is None or _is_sdk_stand_in(self._task_values):
            raise TaskValuesUnavailableError(_NO_RUNTIME_DBUTILS.format(call=call))
        return self._task_values

    def set(self, key: str, value: Any) -> None:
        check_value("this task", key, value)  # a clearer refusal than the runtime's
        call = f"set({key!r})"
        store = self._store(call)
        try:
            store.set(key=key, value=value)
        except Exception as exc:
            raise RuntimeError(_WHEEL_TASK_HINT.format(call=call, exc=exc)) from exc

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        call = f"get({task_key!r}, {key!r})"
        store = self._store(call)
        try:
            return store.get(taskKey=task_key, key=key, default=default)
        except Exception as exc:
            raise RuntimeError(_WHEEL_TASK_HINT.format(call=call, exc=exc)) from exc


def runtime_task_values() -> Any:
    """The Databricks runtime's ``dbutils.jobs.taskValues``, or None where it has none.

    First ``databricks.sdk.runtime``'s ``dbutils``, when it is the runtime's own (its
    ``is_local_implementation`` is False: it took the notebook namespace's objects); then
    ``pyspark.dbutils.DBUtils``, which only the Databricks Runtime's pyspark has (classic
    compute). Call it on Databricks only: elsewhere importing ``databricks.sdk.runtime``
    configures a workspace client from the environment.
    """
    runtime = importlib.import_module("databricks.sdk.runtime")
    if not getattr(runtime, "is_local_implementation", True):
        return runtime.dbutils.jobs.taskValues
    try:
        from pyspark.dbutils import DBUtils
        from pyspark.sql import SparkSession

        return DBUtils(SparkSession.builder.getOrCreate()).jobs.taskValues
    except Exception as exc:  # not the Databricks Runtime's pyspark (e.g. Spark Connect)
        log.warning("no runtime dbutils in this process (%s)", exc)
        return None


def _is_sdk_stand_in(task_values: Any) -> bool:
    """Whether ``task_values`` is the Databricks SDK's local stand-in, whose ``set`` is a no-op."""
    try:
        from databricks.sdk.dbutils import _JobsUtil
    except ImportError:
        return False
    return isinstance(task_values, _JobsUtil._TaskValuesUtil)


#: The runtime's dbutils was found but refused the call.
_WHEEL_TASK_HINT = (
    "dbutils.jobs.taskValues.{call} failed in this python_wheel_task ({exc}). Databricks "
    "documents task values for Python notebook tasks; set `experimental: "
    "python_wheel_wrapper: true` in databricks.yml to run each wheel task in a notebook "
    "wrapper (see docs/deployment.md, Troubleshooting)"
)

#: No dbutils of the runtime in this process (serverless, or a runtime without dbruntime).
_NO_RUNTIME_DBUTILS = (
    "cannot call dbutils.jobs.taskValues.{call} in this python_wheel_task: this process has "
    "no Databricks runtime dbutils (databricks.sdk.runtime fell back to its local stand-in, "
    "whose set() would drop the value, and pyspark.dbutils is missing). Databricks documents "
    "task values for Python notebook tasks only. Run the job on classic compute "
    "(`compute: classic`) and, if this persists, set `experimental: python_wheel_wrapper: "
    "true` in databricks.yml (docs/deployment.md, Troubleshooting)"
)


_ACTIVE: ContextVar[LocalTaskValues | None] = ContextVar("task_values", default=None)


def current_task_values(on_databricks: bool) -> TaskValues:
    """The task-value store for the task running now."""
    if on_databricks:
        return DatabricksTaskValues()
    return _ACTIVE.get() or LocalTaskValues()
