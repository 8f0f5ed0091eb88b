"""Run a planned job in this process, task by task, as Databricks Jobs would.

Tasks run sequentially in the plan's order. A ``python_wheel_task`` calls its entry point
with ``sys.argv`` set to ``[entry_point, *parameters]`` while the run's task-value store is
current (:meth:`LocalTaskValues.running`), so every task shares this process's Spark
session. A task fails when it raises or exits non-zero; what runs next follows run_if and
condition outcomes (:mod:`demand_forecasting.runner.control_flow`). A wheel task whose
resolved parameters exceed what Databricks accepts (:data:`MAX_PARAMETER_BYTES`) fails
before it starts, as it would there.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from demand_forecasting.platform.paths import LocalLayout, default_state_dir
from demand_forecasting.platform.task_values import LocalTaskValues
from demand_forecasting.runner import dynamic
from demand_forecasting.runner.bundle import Bundle, load_bundle
from demand_forecasting.runner.concurrency import RunSlot, RunSlots, skipped_message
from demand_forecasting.runner.control_flow import (
    ConditionError,
    decide,
    evaluate_condition,
    job_result_state,
)
from demand_forecasting.runner.dag import JobPlan, plan_job
from demand_forecasting.runner.entry_points import (
    EntryPoint,
    EntryPointResolver,
    resolve_entry_point,
)
from demand_forecasting.runner.errors import BundleError
from demand_forecasting.runner.model import (
    ConditionTask,
    ForEachTask,
    Job,
    PythonWheelTask,
    RunJobTask,
    Task,
    local_job_id,
)
from demand_forecasting.runner.report import (
    Progress,
    RecordingProgress,
    SilentProgress,
    write_run_record,
)
from demand_forecasting.runner.results import (
    IterationResult,
    JobResultState,
    JobRunResult,
    TaskResult,
    TaskStatus,
)
from demand_forecasting.task import TaskInputError

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(timezone.utc)


class TaskFailure(Exception):
    """A task ended unsuccessfully without raising (non-zero exit, failed child job...)."""


#: The Jobs API: "The JSON representation of this field (for example
#: {"python_params":["john doe","35"]}) cannot exceed 10,000 bytes" (run-now and repair-run
#: ``python_params``, which stand in for a wheel task's ``parameters``). No other figure is
#: documented for a task's resolved parameters; this one is applied to them.
MAX_PARAMETER_BYTES = 10_000


def check_parameter_size(task_key: str, argv: list[str]) -> None:
    """Refuse ``task_key``'s resolved wheel parameters when their JSON exceeds the limit.

    Raises:
        TaskFailure: ``{"python_params": argv}`` is over :data:`MAX_PARAMETER_BYTES` bytes.
    """
    size = len(json.dumps({"python_params": argv}).encode("utf-8"))
    if size > MAX_PARAMETER_BYTES:
        longest = max(argv, key=len)
        raise TaskFailure(
            f"task {task_key}: its resolved parameters are {size:,} bytes of JSON; Databricks "
            f"accepts {MAX_PARAMETER_BYTES:,} (the longest, {len(longest):,} characters, starts "
            f"{longest[:60]!r}). Pass values that grow with the number of segments through the "
            "job run's hand-over table, not as a parameter (e.g. train --segments "
            "from-check-drift)"
        )


def job_parameters(job: Job, overrides: Mapping[str, str]) -> dict[str, str]:
    """The job's parameter defaults with ``overrides`` applied.

    Raises:
        BundleError: an override names a parameter the job does not declare.
    """
    values = {p.name: p.default for p in job.parameters}
    unknown = [name for name in overrides if name not in values]
    if unknown:
        raise BundleError(
            f"{job.where()}: --param {', '.join(unknown)}: not a parameter of this job "
            f"(parameters: {', '.join(values) or 'none'}); declare it under the job's "
            "parameters:"
        )
    values.update(overrides)
    return values


def call_entry_point(function: EntryPoint, argv: list[str]) -> None:
    """Call a console-script function with ``sys.argv = argv``, like its script would.

    Raises:
        TaskFailure: it exited (or returned) with a non-zero code, as ``sys.exit`` would.
        Exception: whatever the function raised.
    """
    saved = sys.argv
    sys.argv = argv
    try:
        try:
            code: object = function()
        except SystemExit as exc:
            code = exc.code
    finally:
        sys.argv = saved
    if code is None or code == 0:
        return
    raise TaskFailure(f"exited with code {code}" if isinstance(code, int) else str(code))


def interrupted(exc: BaseException) -> bool:
    """True when a KeyboardInterrupt (Ctrl-C) is in ``exc``'s cause or context chain: a library
    may turn the interrupt it received into its own error (pyspark's ``toPandas`` raises a
    Py4JJavaError), which must stop the run, not count as a failed attempt to retry."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def describe_error(exc: BaseException) -> str:
    """``"<Type>: <first line of the message>"``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@dataclass
class _Attempts:
    status: TaskStatus
    attempts: int
    error: str | None = None
    traceback: str | None = None


class JobRunner:
    """Runs the jobs of one resolved bundle in this process.

    Args:
        bundle: the bundle, resolved for its target.
        resolver: finds each python_wheel_task's function (default: package metadata, then
            ``package_name.entry_point``).
        progress: told about each task as the run goes (default: nothing shown).
        clock: the time source for start times and ``{{job.start_time.*}}``.
        sleep: waits between retries (tests pass a no-op).
        slots: enforce each job's ``max_concurrent_runs`` across processes with these run
            slots (default: no limit, as for tests that run jobs in a throwaway folder).
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        resolver: EntryPointResolver = resolve_entry_point,
        progress: Progress | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        slots: RunSlots | None = None,
    ) -> None:
        self.bundle = bundle
        self.slots = slots
        self._reserved: dict[str, RunSlot] = {}
        self.resolver = resolver
        self.progress: Progress = progress or SilentProgress()
        self.clock = clock
        self.sleep = sleep
        self._last_run_id = 0

    def plan(self, job_key: str) -> JobPlan:
        """Check the job and every job it runs (raises :class:`BundleError`)."""
        return plan_job(self.bundle, job_key, self.resolver)

    def run(self, job_key: str, parameters: Mapping[str, str] | None = None) -> JobRunResult:
        """Check, then run job ``job_key`` with ``parameters`` over its defaults.

        Raises:
            BundleError: the job cannot run as written (nothing has run).
        """
        try:
            job = self.bundle.job(job_key)
            if self.slots is not None and job.key not in self._reserved:
                # Skip (or queue) before planning, which imports every task's module.
                waiting = self._new_run(job, job_parameters(job, parameters or {}))
                slot = self._slot(job, waiting)
                if slot is None:
                    self.progress.job_finished(waiting, 0)
                    return waiting
                self._reserved[job.key] = slot
            plan = self.plan(job_key)
            values = job_parameters(plan.job, parameters or {})
            # Imported here: the runner itself needs no MLflow (the package's tasks do).
            from demand_forecasting.monitoring import telemetry

            # The tasks share this process: their telemetry rows go to Delta in one commit.
            with telemetry.batch():
                return self._run_plan(plan, values, depth=0)
        finally:
            for slot in self._reserved.values():
                slot.release()
            self._reserved.clear()

    def reserve(self, job_key: str) -> bool:
        """Take a run slot of job ``job_key`` now, for its next :meth:`run`.

        ``demand-forecasting run`` reserves before it plans and starts Spark, so that of two
        runs started together the second learns at once that it will be skipped.

        Returns:
            False when every slot is held (the run will be skipped, or queue).
        """
        if self.slots is None:
            return True
        job = self.bundle.job(job_key)
        got = self.slots.try_acquire(
            self.bundle.target, job.key, job.max_concurrent_runs, 0, self.clock()
        )
        if isinstance(got, RunSlot):
            self._reserved[job.key] = got
            return True
        return False

    # ------------------------------------------------------------------ job runs

    def _new_run_id(self, started: datetime) -> int:
        self._last_run_id = max(self._last_run_id + 1, int(started.timestamp() * 1000))
        return self._last_run_id

    def _new_run(self, job: Job, parameters: dict[str, str]) -> JobRunResult:
        started = self.clock()
        run = JobRunResult(
            job.key,
            job.name,
            self._new_run_id(started),
            self.bundle.target,
            self.bundle.name,
            parameters,
            started,
        )
        base = self._scope(run, {})
        run.parameters = {k: dynamic.substitute(v, base) for k, v in parameters.items()}
        return run

    def _run_plan(self, plan: JobPlan, parameters: dict[str, str], depth: int) -> JobRunResult:
        job = plan.job
        run = self._new_run(job, parameters)
        slot = self._slot(job, run)
        if slot is None:
            self.progress.job_finished(run, depth)
            return run
        try:
            self.progress.job_started(run, depth)
            log.info("job %s: run %s started (target %s)", job.key, run.run_id, run.target)
            return self._run_tasks(plan, run, depth)
        finally:
            slot.release()

    def _slot(self, job: Job, run: JobRunResult) -> RunSlot | None:
        """The run's slot of ``max_concurrent_runs``; None: the run is skipped (see note)."""
        if self.slots is None:
            return RunSlot(None)
        if job.key in self._reserved:
            slot = self._reserved.pop(job.key)
            slot.claim(run.run_id, run.started_at)
            return slot
        got = self.slots.acquire(
            run.target,
            job.key,
            job.max_concurrent_runs,
            run.run_id,
            run.started_at,
            queue=job.queue,
        )
        if isinstance(got, RunSlot):
            return got
        run.state = JobResultState.SKIPPED
        run.note = skipped_message(job.key, job.max_concurrent_runs, got)
        log.warning("%s", run.note)
        return None

    def _run_tasks(self, plan: JobPlan, run: JobRunResult, depth: int) -> JobRunResult:
        job = plan.job
        store = LocalTaskValues()
        results: dict[str, TaskResult] = {}
        clock_start = time.perf_counter()
        for index, key in enumerate(plan.order):
            task = job.task(key)
            decision = decide(task, results)
            if decision.run:
                result = self._run_task(plan, task, run, store, results, index, depth)
            else:
                assert decision.status is not None
                result = TaskResult(key, task.type_name, decision.status, note=decision.reason)
                log.info("task %s: %s (%s)", key, decision.status.value, decision.reason)
            results[key] = result
            run.tasks.append(result)
            self.progress.task_finished(run, result, depth)
        run.state = job_result_state(job, results)
        run.duration_s = time.perf_counter() - clock_start
        self.progress.job_finished(run, depth)
        return run

    def _scope(
        self,
        run: JobRunResult,
        results: Mapping[str, TaskResult],
        store: LocalTaskValues | None = None,
        **task: Any,
    ) -> dynamic.RunScope:
        tasks = {
            key: {
                "run_id": run.run_id * 1000 + position,
                "result_state": result.status.value.lower(),
                "error_code": (result.error or "").split(":", 1)[0],
                "execution_count": result.attempts,
                "values": store.values.get(key, {}) if store else {},
            }
            for position, (key, result) in enumerate(results.items())
        }
        return dynamic.RunScope(
            job_id=str(local_job_id(run.job_key)),
            job_name=run.job_name,
            run_id=run.run_id,
            start_time=run.started_at,
            parameters=run.parameters,
            tasks=tasks,
            workspace_url=str((self.bundle.config.get("workspace") or {}).get("host", "local")),
            **task,
        )

    # ------------------------------------------------------------------ tasks

    def _run_task(
        self,
        plan: JobPlan,
        task: Task,
        run: JobRunResult,
        store: LocalTaskValues,
        results: Mapping[str, TaskResult],
        index: int,
        depth: int,
    ) -> TaskResult:
        result = TaskResult(task.key, task.type_name, TaskStatus.SUCCESS, started_at=self.clock())
        if task.timeout_seconds:
            log.info(
                "task %s: timeout_seconds=%s is not enforced by the local runner",
                task.key,
                task.timeout_seconds,
            )
            result.note = f"timeout_seconds={task.timeout_seconds} not enforced locally"
        started = time.perf_counter()
        spec = task.spec

        def scope(attempt: int) -> dynamic.RunScope:
            return self._scope(
                run,
                results,
                store,
                task_name=task.key,
                task_run_id=run.run_id * 1000 + index,
                execution_count=attempt,
            )

        if isinstance(spec, ForEachTask):
            self._for_each(plan, task, spec, run, store, results, scope(1), result, depth)
        else:
            outcome = self._attempts(
                task,
                run,
                depth,
                lambda attempt: self._run_spec(
                    plan, task, task.spec, run, store, scope(attempt), result, depth
                ),
            )
            result.status, result.attempts = outcome.status, outcome.attempts
            result.error, result.traceback = outcome.error, outcome.traceback
        result.values = dict(store.values.get(task.key, {}))
        result.duration_s = time.perf_counter() - started
        return result

    def _attempts(
        self,
        task: Task,
        run: JobRunResult,
        depth: int,
        attempt_once: Callable[[int], None],
        label: str | None = None,
    ) -> _Attempts:
        """Run ``attempt_once`` until it succeeds or ``task.max_retries`` retries are used."""
        total = task.max_retries + 1
        outcome = _Attempts(TaskStatus.FAILED, 0)
        for attempt in range(1, total + 1):
            if attempt > 1 and task.min_retry_interval_millis:
                self.sleep(task.min_retry_interval_millis / 1000)
            self.progress.task_started(run, label or task.key, task.type_name, attempt, depth)
            outcome.attempts = attempt
            try:
                attempt_once(attempt)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                if interrupted(exc):
                    raise KeyboardInterrupt from exc
                outcome.error = describe_error(exc)
                outcome.traceback = "".join(traceback.format_exception(exc))
                expected = isinstance(
                    exc,
                    TaskFailure | dynamic.DynamicValueError | ConditionError | TaskInputError,
                )
                log.error(
                    "task %s failed (attempt %d of %d): %s",
                    label or task.key,
                    attempt,
                    total,
                    outcome.error,
                    exc_info=None if expected else exc,
                )
                continue
            outcome.status, outcome.error, outcome.traceback = TaskStatus.SUCCESS, None, None
            break
        return outcome

    def _run_spec(
        self,
        plan: JobPlan,
        task: Task,
        spec: Any,
        run: JobRunResult,
        store: LocalTaskValues,
        scope: dynamic.RunScope,
        result: TaskResult,
        depth: int,
    ) -> None:
        """Run one attempt of a task's (or a for_each iteration's) spec; raise on failure."""
        if isinstance(spec, PythonWheelTask):
            argv = self._wheel_arguments(spec, scope, run.parameters)
            result.arguments = [spec.entry_point, *argv]
            check_parameter_size(scope.task_name, argv)
            function = plan.entry_points[task.key]
            with store.running(scope.task_name):
                call_started = time.perf_counter()
                try:
                    call_entry_point(function, [spec.entry_point, *argv])
                finally:
                    result.call_s += time.perf_counter() - call_started
        elif isinstance(spec, ConditionTask):
            left = dynamic.substitute(spec.left, scope)
            right = dynamic.substitute(spec.right, scope)
            outcome = evaluate_condition(spec.op, left, right)
            result.outcome = "true" if outcome else "false"
            result.note = f"{left!r} {spec.op.value} {right!r} is {result.outcome}"
        elif isinstance(spec, RunJobTask):
            child_plan = plan.children[spec.job_key]
            declared = {p.name for p in child_plan.job.parameters}
            values = {name: dynamic.substitute(text, scope) for name, text in spec.job_parameters}
            # Job parameters are pushed down to key-value tasks, and win over task values.
            values.update({k: v for k, v in run.parameters.items() if k in declared})
            child = self._run_plan(child_plan, job_parameters(child_plan.job, values), depth + 1)
            result.child = child
            result.call_s += child.call_s
            if child.state is JobResultState.SKIPPED:
                raise TaskFailure(child.note)
            if child.state is JobResultState.FAILED:
                failed = ", ".join(t.task_key for t in child.failed_tasks) or "a leaf task"
                raise TaskFailure(f"job '{spec.job_key}' FAILED ({failed} failed)")

    @staticmethod
    def _wheel_arguments(
        spec: PythonWheelTask, scope: dynamic.RunScope, job_params: Mapping[str, str]
    ) -> list[str]:
        if spec.named_parameters is None:
            return dynamic.substitute_all(spec.parameters, scope)
        named = {k: dynamic.substitute(v, scope) for k, v in spec.named_parameters}
        # Databricks pushes job parameters down to keyword-argument wheel tasks.
        named.update(job_params)
        return [f"--{key}={value}" for key, value in named.items()]

    def _for_each(
        self,
        plan: JobPlan,
        task: Task,
        spec: ForEachTask,
        run: JobRunResult,
        store: LocalTaskValues,
        results: Mapping[str, TaskResult],
        scope: dynamic.RunScope,
        result: TaskResult,
        depth: int,
    ) -> None:
        result.attempts = 1
        try:
            items = _inputs(dynamic.substitute(spec.inputs, scope))
        except (ValueError, dynamic.DynamicValueError) as exc:
            result.status, result.error = TaskStatus.FAILED, describe_error(exc)
            log.error("task %s failed: %s", task.key, result.error)
            return
        if spec.concurrency > 1:
            result.note = f"concurrency {spec.concurrency} run sequentially locally"
        inner = spec.task
        for index, item in enumerate(items):
            started = time.perf_counter()
            label = f"{task.key}[{index}] {inner.key}"

            def iteration(attempt: int, item: Any = item) -> None:
                inner_scope = self._scope(
                    run,
                    results,
                    store,
                    task_name=inner.key,
                    task_run_id=scope.task_run_id,
                    execution_count=attempt,
                    input=item,
                    has_input=True,
                )
                self._run_spec(plan, task, inner.spec, run, store, inner_scope, result, depth + 1)

            iteration_started = self.clock()
            outcome = self._attempts(inner, run, depth + 1, iteration, label)
            self.progress.task_finished(
                run,
                TaskResult(
                    label,
                    inner.type_name,
                    outcome.status,
                    started_at=iteration_started,
                    duration_s=time.perf_counter() - started,
                    attempts=outcome.attempts,
                    error=outcome.error,
                ),
                depth + 1,
            )
            result.iterations.append(
                IterationResult(
                    index,
                    item,
                    outcome.status,
                    time.perf_counter() - started,
                    outcome.attempts,
                    outcome.error,
                )
            )
            if outcome.error and result.traceback is None:
                result.traceback = outcome.traceback
        failed = [it for it in result.iterations if it.status is TaskStatus.FAILED]
        if failed:
            result.status = TaskStatus.FAILED
            result.error = (
                f"{len(failed)} of {len(items)} iterations failed; first: "
                f"[{failed[0].index}] {failed[0].error}"
            )
        note = f"{len(items)} iterations"
        result.note = f"{note}; {result.note}" if result.note else note


def _inputs(text: str) -> list[Any]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"for_each_task.inputs is not JSON: {text[:200]!r} ({exc})") from exc
    if not isinstance(items, list):
        raise ValueError(f"for_each_task.inputs must be a JSON list, not {text[:200]!r}")
    return items


#: This package's distribution name, as python_wheel_task.package_name gives it.
PACKAGE = "demand_forecasting"


def runs_package_tasks(job: Job, package: str) -> bool:
    """Whether a python_wheel_task of ``job`` (or of its for-each tasks) is ``package``'s."""

    def specs(task: Task) -> list[object]:
        spec = task.spec
        return [spec, *specs(spec.task)] if isinstance(spec, ForEachTask) else [spec]

    def normal(name: str) -> str:
        return name.replace("-", "_").lower()

    return any(
        isinstance(spec, PythonWheelTask) and normal(spec.package_name) == normal(package)
        for task in job.tasks
        for spec in specs(task)
    )


#: Longest wait (seconds) at the end of a run for the background start of local Spark.
BACKGROUND_START_WAIT_S = 120.0


def finish_background_start(thread: threading.Thread) -> None:
    """Wait for the background start of local Spark (its Python worker daemon's job).

    A run that failed in its first seconds would otherwise end the process under that job,
    and Spark logs a ``ConnectException`` stack trace when the finished task cannot reach
    the gone Python process: noise that reads like a second failure.
    """
    if thread.is_alive():
        log.info("waiting for local Spark's background start to finish before exiting")
        thread.join(BACKGROUND_START_WAIT_S)


def run_job(
    root: Path,
    job_key: str,
    *,
    target: str | None = None,
    parameters: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    resolver: EntryPointResolver = resolve_entry_point,
    progress: Progress | None = None,
    runs_dir: Path | None = None,
    write_record: bool = True,
    warm_start: bool = False,
) -> JobRunResult:
    """Load the bundle in ``root`` for ``target`` and run job ``job_key`` in this process.

    Args:
        root: the bundle's root folder.
        job_key: the job's key under ``resources.jobs``.
        target: the bundle target (default: the default target).
        parameters: job parameter values over the defaults (``--param``).
        variables: bundle variable values over everything (``--var``).
        resolver: finds each task's function.
        progress: shows the run (default: nothing).
        runs_dir: where the run record goes (default: the local state folder's ``runs/``).
        write_record: False to write no run record.
        warm_start: start local Spark in the background first when the job runs this
            package's tasks (they all use it), as ``demand-forecasting run`` does.

    Returns:
        The run; ``record_path`` is set when a record was written.

    Raises:
        BundleError: the bundle or job cannot run as written (nothing has run).
    """
    bundle = load_bundle(root, target, variables=variables)
    state = LocalLayout(default_state_dir(bundle.root))
    # Runs from one state folder share its tables: a job's runs there are limited as the
    # job's max_concurrent_runs limits them on Databricks.
    records = runs_dir or state.runs
    if write_record:
        # The record is kept up to date as the run goes: a killed run leaves what it did.
        progress = RecordingProgress(progress or SilentProgress(), records)
    runner = JobRunner(
        bundle, resolver=resolver, progress=progress, slots=RunSlots(state.runs / "locks")
    )
    reserved = runner.reserve(job_key)
    warming = None
    if warm_start and reserved and runs_package_tasks(bundle.job(job_key), PACKAGE):
        # Boot the JVM while planning imports the tasks' modules (both take seconds).
        from demand_forecasting.platform.spark import start_local_in_background

        warming = start_local_in_background(
            LocalLayout(default_state_dir().resolve()).spark, python_daemon=True
        )
    run = runner.run(job_key, parameters)
    if warming is not None:
        finish_background_start(warming)
    if write_record:
        write_run_record(run, records)
    return run
