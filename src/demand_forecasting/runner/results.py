"""What a job run produced: per-task status, timing, errors and task values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class TaskStatus(str, Enum):
    """A task's result state, named as Databricks names it."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    #: Not run: its run_if needed successes (ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, NONE_FAILED).
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    #: Skipped and counted as a success: a branch not taken, or a failure handler not needed.
    EXCLUDED = "EXCLUDED"

    @property
    def failed(self) -> bool:
        """True for FAILED and UPSTREAM_FAILED (what downstream run_if counts as failed)."""
        return self in (TaskStatus.FAILED, TaskStatus.UPSTREAM_FAILED)


class JobResultState(str, Enum):
    """A job run's result (decided by its leaf tasks, as on Databricks)."""

    SUCCESS = "SUCCESS"
    #: Some task failed but every leaf task succeeded (or was excluded).
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    FAILED = "FAILED"
    #: Not run: the job's max_concurrent_runs runs were in progress and its queue is off.
    SKIPPED = "SKIPPED"


@dataclass
class IterationResult:
    """One iteration of a for_each_task."""

    index: int
    input: Any
    status: TaskStatus
    duration_s: float
    attempts: int = 1
    error: str | None = None


@dataclass
class TaskResult:
    """How one task of a run ended.

    Attributes:
        task_key, task_type: the task.
        status: its result state.
        started_at: when it started (None when it did not run).
        duration_s: wall time from start to end, retries included.
        call_s: time spent inside entry-point functions (for overhead figures).
        attempts: how many times it ran (1 + retries used).
        error: ``"<ExceptionType>: <first line>"`` of the last failure.
        traceback: the full traceback of the last failure.
        note: why it was skipped, the condition it evaluated, what was ignored.
        outcome: a condition task's ``"true"``/``"false"``.
        values: the task values it set.
        arguments: the argv it was called with (after substitution).
        iterations: a for_each_task's iterations.
        child: a run_job_task's job run.
    """

    task_key: str
    task_type: str
    status: TaskStatus
    started_at: datetime | None = None
    duration_s: float = 0.0
    call_s: float = 0.0
    attempts: int = 0
    error: str | None = None
    traceback: str | None = None
    note: str = ""
    outcome: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    arguments: list[str] = field(default_factory=list)
    iterations: list[IterationResult] = field(default_factory=list)
    child: JobRunResult | None = None


@dataclass
class JobRunResult:
    """A whole job run, in the order its tasks were decided."""

    job_key: str
    job_name: str
    run_id: int
    target: str
    bundle: str
    parameters: dict[str, str]
    started_at: datetime
    duration_s: float = 0.0
    state: JobResultState = JobResultState.SUCCESS
    tasks: list[TaskResult] = field(default_factory=list)
    record_path: str | None = None
    #: Why the run was skipped.
    note: str = ""

    @property
    def failed_tasks(self) -> list[TaskResult]:
        """Tasks that ran and failed (not the ones skipped because of them)."""
        return [t for t in self.tasks if t.status is TaskStatus.FAILED]

    @property
    def call_s(self) -> float:
        """Time spent inside task functions, child jobs included."""
        return sum(t.call_s for t in self.tasks)

    def to_record(self) -> dict[str, Any]:
        """The run as a JSON-ready dict (the run record)."""
        record: dict[str, Any] = _jsonable(asdict(self))
        return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value
