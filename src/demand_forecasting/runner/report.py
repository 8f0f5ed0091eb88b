"""What a person sees of a run: progress per task, a summary table, and the run record."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Protocol, TextIO

from demand_forecasting.runner.results import JobResultState, JobRunResult, TaskResult, TaskStatus

_MARK = {
    TaskStatus.SUCCESS: "ok",
    TaskStatus.FAILED: "FAILED",
    TaskStatus.UPSTREAM_FAILED: "skipped",
    TaskStatus.EXCLUDED: "excluded",
}


class Progress(Protocol):
    """Told about a run as it goes (the executor calls these in order)."""

    def job_started(self, run: JobRunResult, depth: int) -> None:
        """A job run starts (``depth`` > 0: started by a run_job_task)."""

    def task_started(
        self, run: JobRunResult, task_key: str, task_type: str, attempt: int, depth: int
    ) -> None:
        """A task (attempt) starts."""

    def task_finished(self, run: JobRunResult, result: TaskResult, depth: int) -> None:
        """A task ended, or was decided not to run."""

    def job_finished(self, run: JobRunResult, depth: int) -> None:
        """A job run ended."""


class SilentProgress:
    """Progress that shows nothing (tests, benchmarks)."""

    def job_started(self, run: JobRunResult, depth: int) -> None:
        """Nothing."""

    def task_started(
        self, run: JobRunResult, task_key: str, task_type: str, attempt: int, depth: int
    ) -> None:
        """Nothing."""

    def task_finished(self, run: JobRunResult, result: TaskResult, depth: int) -> None:
        """Nothing."""

    def job_finished(self, run: JobRunResult, depth: int) -> None:
        """Nothing."""


class ConsoleProgress:
    """One line per task start and end on ``stream`` (stdout), then a summary table."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _line(self, depth: int, text: str) -> None:
        print("  " * depth + text, file=self.stream, flush=True)

    def job_started(self, run: JobRunResult, depth: int) -> None:
        """Announce the job, target and parameters."""
        params = " ".join(f"{k}={v}" for k, v in run.parameters.items())
        self._line(
            depth,
            f"== job '{run.job_key}' ({run.job_name}) target={run.target} "
            f"run_id={run.run_id}" + (f" params: {params}" if params else ""),
        )

    def task_started(
        self, run: JobRunResult, task_key: str, task_type: str, attempt: int, depth: int
    ) -> None:
        """``[start] task (type) at HH:MM:SS``."""
        retry = f" attempt {attempt}" if attempt > 1 else ""
        self._line(depth, f"[start] {task_key} ({task_type}){retry} at {_now()}")

    def task_finished(self, run: JobRunResult, result: TaskResult, depth: int) -> None:
        """``[ok] task in 1.2s`` / ``[FAILED] ...: error`` / ``[skipped] ...: reason``."""
        mark = _MARK[result.status]
        if result.started_at is None:
            self._line(depth, f"[{mark}] {result.task_key}: {result.note}")
            return
        detail = (
            f": {result.error}" if result.error else (f" ({result.note})" if result.note else "")
        )
        self._line(
            depth, f"[{mark}] {result.task_key} at {_now()} in {result.duration_s:.2f}s{detail}"
        )

    def job_finished(self, run: JobRunResult, depth: int) -> None:
        """The summary table of the run."""
        for line in summary_table(run).splitlines():
            self._line(depth, line)


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def summary_table(run: JobRunResult) -> str:
    """A plain-text table: task, status, duration, note; then the job's result."""
    if run.state is JobResultState.SKIPPED:
        return f"job '{run.job_key}' SKIPPED, no task ran (run_id {run.run_id})"
    rows = [("task", "status", "duration", "note")]
    for task in run.tasks:
        note = task.error or task.note
        if task.attempts > 1:
            note = f"{task.attempts} attempts; {note}" if note else f"{task.attempts} attempts"
        duration = f"{task.duration_s:.2f}s" if task.started_at else "-"
        rows.append((task.task_key, task.status.value, duration, note))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in [*widths, 4]))
    lines.append(
        f"job '{run.job_key}' {run.state.value} in {run.duration_s:.2f}s (run_id {run.run_id})"
    )
    return "\n".join(lines)


def failure_message(run: JobRunResult) -> str:
    """One line per failed task: ``task 'x' failed: Type: message``."""
    lines = [f"job '{run.job_key}' {run.state.value}:"]
    for task in run.failed_tasks:
        lines.append(f"  task '{task.task_key}' failed: {task.error}")
        if task.child is not None:
            lines += ["  " + line for line in failure_message(task.child).splitlines()[1:]]
    return "\n".join(lines)


def show(text: str, *, error: bool = False) -> None:
    """Print ``text`` for a person: stderr for errors, stdout otherwise."""
    print(text, file=sys.stderr if error else sys.stdout, flush=True)


def write_run_record(
    run: JobRunResult, runs_dir: Path, *, running_task: str | None = None, running: bool = False
) -> Path:
    """Write the run as JSON to ``runs_dir/<start>_<job>_<run_id>.json`` and return the path.

    With ``running``, the record of a run still going on: ``state`` is ``RUNNING``,
    ``running_task`` names the task in progress (None between tasks) and ``duration_s`` is
    the time so far. The file is replaced
    whole (written beside it, then renamed), so a reader never sees half a record.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = run.started_at.strftime("%Y%m%dT%H%M%SZ")
    path = runs_dir / f"{stamp}_{run.job_key}_{run.run_id}.json"
    run.record_path = str(path)
    record = run.to_record()
    if running:
        elapsed = (datetime.now(run.started_at.tzinfo) - run.started_at).total_seconds()
        record.update(state=RUNNING, running_task=running_task, duration_s=round(elapsed, 3))
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


#: ``state`` of a record written while its run goes on; a run killed before its end (SIGKILL,
#: out of memory) leaves it, with the tasks it finished and the one it was in.
RUNNING = "RUNNING"


class RecordingProgress:
    """Another :class:`Progress` that also keeps the run record on disk while the run goes on.

    The record is written when the job starts and at each start and end of one of its tasks
    (a child job's tasks are inside one of them); :func:`write_run_record`'s final record
    replaces it when the run ends.
    """

    def __init__(self, inner: Progress, runs_dir: Path) -> None:
        self.inner = inner
        self.runs_dir = runs_dir

    def job_started(self, run: JobRunResult, depth: int) -> None:
        """Tell the inner progress; record the top-level run as started."""
        self.inner.job_started(run, depth)
        if depth == 0:
            write_run_record(run, self.runs_dir, running=True)

    def task_started(
        self, run: JobRunResult, task_key: str, task_type: str, attempt: int, depth: int
    ) -> None:
        """Tell the inner progress; record which task the run is in."""
        self.inner.task_started(run, task_key, task_type, attempt, depth)
        if depth == 0:
            write_run_record(run, self.runs_dir, running_task=task_key, running=True)

    def task_finished(self, run: JobRunResult, result: TaskResult, depth: int) -> None:
        """Tell the inner progress; record the task's result."""
        self.inner.task_finished(run, result, depth)
        if depth == 0:
            write_run_record(run, self.runs_dir, running=True)

    def job_finished(self, run: JobRunResult, depth: int) -> None:
        """Tell the inner progress (the caller writes the final record)."""
        self.inner.job_finished(run, depth)
