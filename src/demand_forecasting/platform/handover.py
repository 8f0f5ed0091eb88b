"""The hand-over: values that grow with the estate, passed between the tasks of one job run.

Task values suit small scalars: Databricks caps each at 48 KiB of JSON, and documents
``dbutils.jobs.taskValues`` for notebook tasks only. A list of segments or a
``{segment: version}`` map is ~50 bytes a segment, so an estate of ~1,000 segments breaks
them. Those go into a Delta table of the run's schema instead (``job_handover``), one row
per job run, task and key holding the value's JSON, and the next task reads them there. The
same code path runs on Databricks and locally; only the table's location differs.

Safe to repeat: a publication replaces the row of its job run, task and key
(``replaceWhere``), so a task retry or a repaired run overwrites what its earlier attempt
published, and a rerun of the month (a new job run) starts from nothing.

A task run by hand (no ``--job-run-id``) has no run to hand over to: its values are kept in
memory for the tasks run with the same context, as task values are outside a job.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from demand_forecasting.platform.tables import TableStore

log = logging.getLogger(__name__)

HANDOVER_SCHEMA = (
    "job_run_id string, task string, key string, value string, items int, published_at timestamp"
)
#: What a job run id, task key and value key may hold (they go into a replaceWhere).
_SAFE = re.compile(r"^[A-Za-z0-9_.:\-]+$")


class HandOver:
    """Values of one job run's tasks in the hand-over table (in memory without a run id).

    Args:
        tables: where the table lives.
        table: its full name (``catalog.schema.job_handover``).
        job_run_id: the job run (``{{job.run_id}}``); None for a task run by hand.
        clock: when a value was published.

    Raises:
        ValueError: ``job_run_id`` holds other characters than letters, digits, ``_.:-``.
    """

    def __init__(
        self,
        tables: TableStore,
        table: str,
        job_run_id: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        if job_run_id is not None:
            _require_safe("--job-run-id", job_run_id)
        self.tables = tables
        self.table = table
        self.job_run_id = job_run_id
        self.clock = clock
        self._memory: dict[tuple[str, str], str] = {}

    def publish(self, task: str, values: Mapping[str, Any]) -> None:
        """Publish ``values`` (``{key: JSON-serialisable value}``) of ``task`` for later tasks,
        in one write (each write is a Delta commit: a task publishes once).

        Replaces what this job run's ``task`` published under these keys before (a retry).
        """
        _require_safe("task", task)
        if not values:
            return
        texts = {
            _require_safe("key", key): json.dumps(v, sort_keys=True) for key, v in values.items()
        }
        if self.job_run_id is None:
            for key, text in texts.items():
                self._memory[(task, key)] = text
                log.info("hand-over %s.%s (no job run: kept in memory) = %s", task, key, text[:200])
            return
        from demand_forecasting.platform.spark import rows_frame

        now = self.clock()
        rows = [
            (self.job_run_id, task, key, text, _items(values[key]), now)
            for key, text in texts.items()
        ]
        keys = ", ".join(f"'{key}'" for key in texts)
        self.tables.write(
            rows_frame(self.tables.spark, rows, HANDOVER_SCHEMA),
            self.table,
            mode="overwrite",
            replaceWhere=f"job_run_id = '{self.job_run_id}' AND task = '{task}' "
            f"AND key IN ({keys})",
        )
        for key, text in texts.items():
            items = _items(values[key])
            log.info(
                "hand-over %s.%s of job run %s: %s%s bytes of JSON in %s",
                task,
                key,
                self.job_run_id,
                f"{items} item(s), " if items is not None else "",
                f"{len(text.encode('utf-8')):,}",
                self.table,
            )

    def read(self, task: str, key: str, default: Any = None) -> Any:
        """What ``task`` of this job run published under ``key``, or ``default`` if nothing."""
        if self.job_run_id is None:
            text = self._memory.get((task, key))
            return default if text is None else json.loads(text)
        if not self.tables.exists(self.table):
            return default
        from pyspark.sql import functions as F

        row = (
            self.tables.read(self.table)
            .where(
                (F.col("job_run_id") == self.job_run_id)
                & (F.col("task") == task)
                & (F.col("key") == key)
            )
            .orderBy(F.col("published_at").desc())
            .select("value")
            .first()
        )
        return default if row is None else json.loads(row["value"])


def _items(value: Any) -> int | None:
    """The number of entries of a list or map (None for a scalar)."""
    return len(value) if isinstance(value, list | dict | tuple) else None


def _require_safe(what: str, text: str) -> str:
    """``text``, if it may key the table (it goes into a ``replaceWhere``).

    Raises:
        ValueError: it holds other characters than letters, digits and ``_.:-``.
    """
    if not _SAFE.match(text):
        raise ValueError(
            f"hand-over: {what} {text!r} may hold only letters, digits and '_.:-' (it keys the "
            "job_handover table); pass the job run id as {{job.run_id}}"
        )
    return text
