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

Safe beside another job: the monthly and the full-retrain job may publish at the same time.
The table is partitioned by job run, so two job runs' publications touch disjoint partitions
and Delta's conflict check (which compares partitions read with files added) lets both
commit; on an unpartitioned table every such pair conflicts (``ConcurrentAppendException``).
What can still conflict (two writers creating the table, a retention delete) is tried again
a few times (:data:`COMMIT_ATTEMPTS`), each attempt logged; a failed attempt committed nothing.

Kept :data:`RETENTION_DAYS` days: the monitor task deletes the partitions of older job runs
(:meth:`HandOver.delete_expired`, never the current run's), one metadata-only commit a month.

A task run by hand (no ``--job-run-id``) has no run to hand over to: its values are kept in
memory for the tasks run with the same context, as task values are outside a job.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from demand_forecasting.platform.tables import TableStore, is_commit_conflict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

HANDOVER_SCHEMA = (
    "job_run_id string, task string, key string, value string, items int, published_at timestamp"
)
#: The table's partition column: job runs write disjoint partitions, so they never conflict.
PARTITION_BY = ("job_run_id",)
#: Attempts of a write that lost to a concurrent commit, and the pause (s) after the first.
COMMIT_ATTEMPTS = 5
RETRY_PAUSE_SECONDS = 0.5
#: Days a job run's rows are kept: beyond the 60 days Databricks keeps a job run (a run that
#: can still be repaired finds what its earlier tasks handed over).
RETENTION_DAYS = 90
#: What a job run id, task key and value key may hold (they go into a replaceWhere).
_SAFE = re.compile(r"^[A-Za-z0-9_.:\-]+$")


class CommitConflictError(RuntimeError):
    """A write to the hand-over table lost to concurrent commits on every attempt."""


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
        self._replace(
            rows_frame(self.tables.spark, rows, HANDOVER_SCHEMA),
            f"job_run_id = '{self.job_run_id}' AND task = '{task}' AND key IN ({keys})",
            f"publish {task}",
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

    def delete_expired(self, days: int = RETENTION_DAYS) -> list[str]:
        """Delete the rows of the job runs that published nothing in the last ``days`` days
        (never this job run's); the job runs deleted, oldest first.

        Cheap: one read of two columns to find them, then a DELETE on the partition column
        alone, which Delta does by dropping files (no rewrite) and which conflicts with no
        publication of another job run. A conflict it still meets after
        :data:`COMMIT_ATTEMPTS` attempts is logged and left to next month's run.
        """
        if self.job_run_id is None or not self.tables.exists(self.table):
            return []
        from pyspark.sql import functions as F

        cutoff = self.clock() - timedelta(days=days)
        expired = [
            _require_safe("stored job_run_id", row["job_run_id"])
            for row in self.tables.read(self.table)
            .groupBy("job_run_id")
            .agg(F.max("published_at").alias("last_published"))
            .where(
                (F.col("last_published") < F.lit(cutoff)) & (F.col("job_run_id") != self.job_run_id)
            )
            .orderBy("last_published")
            .collect()
        ]
        if not expired:
            log.info("hand-over: no job run older than %d days in %s", days, self.table)
            return []
        runs = ", ".join(f"'{run}'" for run in expired)
        try:
            self._committed(
                "retention delete",
                lambda: self.tables.delta_table(self.table).delete(f"job_run_id IN ({runs})"),
            )
        except CommitConflictError as exc:
            log.warning("%s; the rows stay until the next month's monitor deletes them", exc)
            return []
        log.info(
            "hand-over: deleted the rows of %d job run(s) with nothing published since %s "
            "(%d days) from %s: %s",
            len(expired),
            cutoff.date().isoformat(),
            days,
            self.table,
            ", ".join(expired[:10]) + (" ..." if len(expired) > 10 else ""),
        )
        return expired

    def _replace(self, frame: DataFrame, where: str, what: str) -> None:
        """Replace the rows matching ``where`` (within this job run's partition) by ``frame``.

        A table written before it was partitioned is partitioned first (one rewrite, every
        row kept): on it a partitioned write is refused with ``DELTA_METADATA_MISMATCH``.
        """

        def write() -> None:
            self.tables.write(
                frame, self.table, mode="overwrite", partition_by=PARTITION_BY, replaceWhere=where
            )

        try:
            self._committed(what, write)
        except Exception as exc:
            if not _partitions_differ(exc):
                raise
            log.warning(
                "hand-over: %s is not partitioned by %s (written before it was); rewriting it "
                "partitioned, every row kept",
                self.table,
                ", ".join(PARTITION_BY),
            )
            self._committed("partition the table", self._partition_table)
            self._committed(what, write)

    def _partition_table(self) -> None:
        """Rewrite the table, all its rows, partitioned by :data:`PARTITION_BY`."""
        self.tables.write(
            self.tables.read(self.table),
            self.table,
            mode="overwrite",
            partition_by=PARTITION_BY,
            overwriteSchema="true",
        )

    def _committed(self, what: str, write: Callable[[], object]) -> None:
        """Run ``write`` (one Delta commit), and again after a pause while a concurrent commit
        beat it (a lost commit changed nothing), up to :data:`COMMIT_ATTEMPTS` times.

        Raises:
            CommitConflictError: every attempt lost to a concurrent commit.
        """
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                write()
                return
            except Exception as exc:
                if not is_commit_conflict(exc):
                    raise
                if attempt == COMMIT_ATTEMPTS:
                    raise CommitConflictError(
                        f"hand-over: {what} of job run {self.job_run_id} lost to a concurrent "
                        f"commit to {self.table} {COMMIT_ATTEMPTS} times (last: "
                        f"{str(exc).splitlines()[0]}); rerun the task: a rerun replaces what "
                        "it published"
                    ) from exc
                pause = RETRY_PAUSE_SECONDS * attempt
                log.warning(
                    "hand-over: %s of job run %s lost to a concurrent commit to %s (attempt "
                    "%d of %d: %s); trying again in %.1f s",
                    what,
                    self.job_run_id,
                    self.table,
                    attempt,
                    COMMIT_ATTEMPTS,
                    str(exc).splitlines()[0],
                    pause,
                )
                time.sleep(pause)

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


def _partitions_differ(exc: BaseException) -> bool:
    """True when Delta refused a write whose partition columns differ from the table's."""
    condition = getattr(exc, "getCondition", None)
    return (
        callable(condition)
        and condition() == "DELTA_METADATA_MISMATCH"
        and "Partition columns do not match" in str(exc)
    )


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
