"""Run telemetry: each task's duration, rows in/out, peak memory and outcome.

:class:`TaskRecorder` wraps a task (``task.run_task`` uses it for every entry point). When
the task ends, successfully or not, one row goes to the ops Delta table
(:data:`demand_forecasting.names.TELEMETRY`) and, when the task knows its job run and
experiment, the same figures go to the job's parent MLflow run as metrics
``<task>/duration_s``, ``<task>/rows_in``, ``<task>/rows_out``, ``<task>/peak_memory_mb``.

A Delta commit costs seconds on a small machine, so a process that runs a whole job (the
local runner) holds its tasks' rows in a :func:`batch` and writes them in one commit when the
job run ends, or earlier when a task calls :func:`flush`; a reader of the job run's rows
can add the rows still held instead (:func:`held`, as the monitor's report does). Without
a batch (a task on Databricks, a task run by hand) each row is written when its task ends.
A batched row is lost if the process is killed before the batch is written.

Rows in/out come from what the task's ``run`` returns (attributes or keys ``rows_in`` /
``rows_out``) or from :func:`record_rows` calls while it runs. A task that works segment by
segment also records each segment's own seconds (:func:`record_segment_seconds`, column
``segment_seconds``); monitor splits the task's cost over the models by them
(:mod:`demand_forecasting.monitoring.costs`). Telemetry never changes a task's outcome: a
failure to record is logged as a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import astuple, dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING

from demand_forecasting import names
from demand_forecasting.monitoring.memory import PeakMemorySampler
from demand_forecasting.platform.spark import rows_frame

if TYPE_CHECKING:
    from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

TELEMETRY_SCHEMA = (
    "job_run_id string, task string, target string, started_at timestamp, "
    "ended_at timestamp, duration_s double, rows_in long, rows_out long, "
    "peak_memory_mb double, status string, error string, "
    "segment_seconds map<string, double>"
)
SUCCESS, FAILED = "SUCCESS", "FAILED"


@dataclass(frozen=True)
class TaskTelemetry:
    """One task attempt's figures (a row of the telemetry table)."""

    job_run_id: str | None
    task: str
    target: str
    started_at: datetime
    ended_at: datetime
    duration_s: float
    rows_in: int | None
    rows_out: int | None
    peak_memory_mb: float
    status: str
    error: str | None
    #: Seconds of each segment's own work in the task (train, validate_models, score).
    segment_seconds: dict[str, float] | None = None

    def metrics(self) -> dict[str, float]:
        """The figures as MLflow metrics of the parent run (absent counts left out)."""
        values = {
            "duration_s": self.duration_s,
            "peak_memory_mb": self.peak_memory_mb,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
        }
        return {f"{self.task}/{k}": float(v) for k, v in values.items() if v is not None}


def rows_of(summary: object) -> tuple[int | None, int | None]:
    """``(rows_in, rows_out)`` of a task's summary: attributes or mapping keys, else None."""

    def pick(key: str) -> int | None:
        value = summary.get(key) if isinstance(summary, Mapping) else getattr(summary, key, None)
        return int(value) if isinstance(value, int | float) else None

    return pick("rows_in"), pick("rows_out")


@dataclass
class _Counts:
    rows_in: int | None = None
    rows_out: int | None = None
    segment_seconds: dict[str, float] | None = None


_ACTIVE: ContextVar[_Counts | None] = ContextVar("telemetry_counts", default=None)
#: Rows held for one commit while a :func:`batch` is open (None: write each row at once).
_BATCH: ContextVar[list[tuple[RunContext, TaskTelemetry]] | None] = ContextVar(
    "telemetry_batch", default=None
)


def record_rows(*, rows_in: int | None = None, rows_out: int | None = None) -> None:
    """Add to the running task's row counts (no-op outside a recorded task)."""
    counts = _ACTIVE.get()
    if counts is None:
        return
    if rows_in is not None:
        counts.rows_in = (counts.rows_in or 0) + rows_in
    if rows_out is not None:
        counts.rows_out = (counts.rows_out or 0) + rows_out


def record_segment_seconds(seconds: Mapping[str, float]) -> None:
    """Add each segment's own working seconds to the running task's record (no-op outside a
    recorded task). Monitor splits the task's cost over the segments in these proportions."""
    counts = _ACTIVE.get()
    if counts is None:
        return
    recorded = counts.segment_seconds if counts.segment_seconds is not None else {}
    for segment, value in seconds.items():
        recorded[str(segment)] = recorded.get(str(segment), 0.0) + float(value)
    counts.segment_seconds = recorded


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class TaskRecorder:
    """Measures one task; publishes its :class:`TaskTelemetry` when the ``with`` block ends.

    Args:
        task: the task's name (the entry point's program name).
        target: bundle target.
        job_run_id: ``{{job.run_id}}`` (None when started by hand: no MLflow parent run).
        experiment: MLflow experiment of the parent run (None: no MLflow metrics).
    """

    task: str
    target: str
    job_run_id: str | None = None
    experiment: str | None = None
    ctx: RunContext | None = None
    record: TaskTelemetry | None = None
    _counts: _Counts = field(default_factory=_Counts)
    _summary_rows: tuple[int | None, int | None] = (None, None)
    _token: Token[_Counts | None] | None = None

    def bind(self, ctx: RunContext) -> None:
        """Give the recorder the context to publish through (once it is built)."""
        self.ctx = ctx

    def observe(self, summary: object) -> None:
        """Take row counts from the task's returned summary."""
        self._summary_rows = rows_of(summary)

    def __enter__(self) -> TaskRecorder:
        self._started_at = _utc_now()
        self._started = time.perf_counter()
        self._sampler = PeakMemorySampler().__enter__()
        self._token = _ACTIVE.set(self._counts)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sampler.__exit__(exc_type, exc, tb)
        if self._token is not None:
            _ACTIVE.reset(self._token)
        failed = exc is not None and not (isinstance(exc, SystemExit) and exc.code in (0, None))
        summary_in, summary_out = self._summary_rows
        self.record = TaskTelemetry(
            job_run_id=self.job_run_id,
            task=self.task,
            target=self.target,
            started_at=self._started_at,
            ended_at=_utc_now(),
            duration_s=round(time.perf_counter() - self._started, 3),
            rows_in=summary_in if summary_in is not None else self._counts.rows_in,
            rows_out=summary_out if summary_out is not None else self._counts.rows_out,
            peak_memory_mb=round(self._sampler.peak_mb, 1),
            status=FAILED if failed else SUCCESS,
            error=f"{type(exc).__name__}: {exc}"[:1000] if failed else None,
            segment_seconds=self._counts.segment_seconds,
        )
        log.info(
            "telemetry %s: %s in %.1fs, rows in=%s out=%s, peak memory %.0f MiB",
            self.task,
            self.record.status,
            self.record.duration_s,
            self.record.rows_in,
            self.record.rows_out,
            self.record.peak_memory_mb,
        )
        if self.ctx is not None:
            publish(self.ctx, self.record, self.experiment)


@contextmanager
def batch() -> Iterator[None]:
    """Hold the telemetry rows of the tasks run inside; write them in one commit at the end.

    A batch opened inside another adds to the outer one (the outer one writes).
    """
    if _BATCH.get() is not None:
        yield
        return
    token = _BATCH.set([])
    try:
        yield
    finally:
        try:
            flush()
        finally:
            _BATCH.reset(token)


def flush() -> None:
    """Write the rows the open :func:`batch` holds (one commit per telemetry table).

    Call before reading the telemetry table while a batch may be open. Best effort, like
    every telemetry write: a failure is logged as a warning and the rows are dropped.
    """
    pending = _BATCH.get()
    if not pending:
        return
    held = list(pending)
    pending.clear()
    by_table: dict[str, list[tuple[RunContext, TaskTelemetry]]] = {}
    for ctx, record in held:
        by_table.setdefault(ctx.table(names.TELEMETRY), []).append((ctx, record))
    for table, rows in by_table.items():
        _append(rows[-1][0], table, [record for _, record in rows])


def held(ctx: RunContext, job_run_id: str) -> list[TaskTelemetry]:
    """The rows of ``job_run_id`` that the open :func:`batch` holds for ``ctx``'s telemetry
    table (not in the table yet); empty without a batch.

    A reader that adds these to what it reads from the table sees every row without the
    commit a :func:`flush` costs.
    """
    pending = _BATCH.get() or []
    table = ctx.table(names.TELEMETRY)
    return [
        record
        for holder, record in pending
        if record.job_run_id == job_run_id and holder.table(names.TELEMETRY) == table
    ]


def _append(ctx: RunContext, table: str, records: list[TaskTelemetry]) -> None:
    try:
        frame = rows_frame(ctx.spark, [astuple(r) for r in records], TELEMETRY_SCHEMA)
        # mergeSchema: a table written before a column was added gets it (older rows null).
        ctx.tables.write(frame.coalesce(1), table, mode="append", mergeSchema="true")
    except Exception as exc:  # telemetry must never change the task's outcome
        tasks = ", ".join(r.task for r in records)
        log.warning(
            "telemetry of %s not written to %s: %s: %s", tasks, table, type(exc).__name__, exc
        )


def publish(ctx: RunContext, record: TaskTelemetry, experiment: str | None) -> None:
    """Append ``record`` to the telemetry table (or the open batch) and log it to the parent
    run (best effort)."""
    pending = _BATCH.get()
    if pending is not None:
        pending.append((ctx, record))
    else:
        _append(ctx, ctx.table(names.TELEMETRY), [record])
    if record.job_run_id is None or experiment is None:
        return
    # Imported here: the local runner opens a batch and should not pay for MLflow's import.
    from mlflow.entities import Metric

    from demand_forecasting.monitoring.job_run import job_parent_run

    try:
        run_id = job_parent_run(
            ctx.mlflow,
            experiment,
            record.job_run_id,
            target=record.target,
            artifact_root=ctx.mlflow_store.artifact_root,
        )
        timestamp = int(record.ended_at.timestamp() * 1000)
        metrics = [Metric(k, v, timestamp, 0) for k, v in record.metrics().items()]
        ctx.mlflow.log_batch(run_id, metrics=metrics)
        ctx.mlflow.set_terminated(run_id, "FINISHED" if record.status == SUCCESS else "FAILED")
    except Exception as exc:
        log.warning(
            "telemetry of %s not logged to MLflow experiment %s: %s", record.task, experiment, exc
        )
