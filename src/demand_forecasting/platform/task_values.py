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


class DatabricksTaskValues:
    """``dbutils.jobs.taskValues`` of the running Databricks job."""

    def __init__(self) -> None:
        from databricks.sdk.runtime import dbutils

        self._task_values = dbutils.jobs.taskValues

    def set(self, key: str, value: Any) -> None:
        check_value("this task", key, value)  # a clearer refusal than the runtime's
        try:
            self._task_values.set(key=key, value=value)
        except Exception as exc:
            raise RuntimeError(_WHEEL_TASK_HINT.format(call=f"set({key!r})", exc=exc)) from exc

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        try:
            return self._task_values.get(taskKey=task_key, key=key, default=default)
        except Exception as exc:
            call = f"get({task_key!r}, {key!r})"
            raise RuntimeError(_WHEEL_TASK_HINT.format(call=call, exc=exc)) from exc


#: Databricks documents ``dbutils.jobs.taskValues`` for Python notebooks; this project calls
#: it from python_wheel_tasks. If a runtime refuses that, this says what to change.
_WHEEL_TASK_HINT = (
    "dbutils.jobs.taskValues.{call} failed in this python_wheel_task ({exc}). Databricks "
    "documents task values for Python notebook tasks; set `experimental: "
    "python_wheel_wrapper: true` in databricks.yml to run each wheel task in a notebook "
    "wrapper (see docs/deployment.md, Troubleshooting)"
)


_ACTIVE: ContextVar[LocalTaskValues | None] = ContextVar("task_values", default=None)


def current_task_values(on_databricks: bool) -> TaskValues:
    """The task-value store for the task running now."""
    if on_databricks:
        return DatabricksTaskValues()
    return _ACTIVE.get() or LocalTaskValues()
