"""Typed jobs and tasks, parsed from a resolved bundle job (the Jobs API's shape).

Only the task types the local runner can run are modelled; any other type is refused by
name here, before anything runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from demand_forecasting.runner.errors import BundleError

RUNNABLE_TYPES = ("python_wheel_task", "condition_task", "run_job_task", "for_each_task")


def local_job_id(job_key: str) -> int:
    """The local stand-in for ``${resources.jobs.<key>.id}``: a stable integer per job key.

    Job ids are integers in the Jobs API (and in ``databricks.bundles``); the runner maps
    ``run_job_task.job_id`` back to the key with the bundle's id table.
    """
    return int.from_bytes(hashlib.sha256(job_key.encode()).digest()[:6], "big")


class RunIf(str, Enum):
    """When a task runs, given how its dependencies ended (Databricks ``run_if``)."""

    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


class ConditionOp(str, Enum):
    """The operators of a ``condition_task``."""

    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL = "NOT_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"


@dataclass(frozen=True)
class Dependency:
    """One ``depends_on`` entry; ``outcome`` (``"true"``/``"false"``) only on a condition."""

    task_key: str
    outcome: str | None = None


@dataclass(frozen=True)
class PythonWheelTask:
    """A console-script entry point called with ``parameters`` or ``--key=value`` pairs."""

    package_name: str
    entry_point: str
    parameters: tuple[str, ...] = ()
    named_parameters: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class ConditionTask:
    """``left <op> right``; its outcome (``true``/``false``) selects downstream edges."""

    op: ConditionOp
    left: str
    right: str


@dataclass(frozen=True)
class RunJobTask:
    """Runs another job of the bundle (``job_id: ${resources.jobs.<key>.id}``)."""

    job_key: str
    job_parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ForEachTask:
    """Runs ``task`` once per item of ``inputs`` (a JSON list or a reference to one)."""

    inputs: str
    task: Task
    concurrency: int = 1


TaskSpec = PythonWheelTask | ConditionTask | RunJobTask | ForEachTask


@dataclass(frozen=True)
class Task:
    """One task of a job.

    Attributes:
        key: ``task_key``.
        spec: what the task runs.
        depends_on: its upstream tasks.
        run_if: when it runs given how they ended.
        max_retries: local retries after a failure (-1, "forever" on Databricks, is 3 here).
        min_retry_interval_millis: wait between attempts.
        timeout_seconds: recorded; not enforced locally (logged).
        source: the file that declares the task.
    """

    key: str
    spec: TaskSpec
    depends_on: tuple[Dependency, ...] = ()
    run_if: RunIf = RunIf.ALL_SUCCESS
    max_retries: int = 0
    min_retry_interval_millis: int = 0
    timeout_seconds: int | None = None
    source: str = ""

    @property
    def type_name(self) -> str:
        """The YAML key of the task type (``python_wheel_task``...)."""
        return _TYPE_NAMES[type(self.spec)]


_TYPE_NAMES: dict[type, str] = {
    PythonWheelTask: "python_wheel_task",
    ConditionTask: "condition_task",
    RunJobTask: "run_job_task",
    ForEachTask: "for_each_task",
}


@dataclass(frozen=True)
class JobParameter:
    """A job-level parameter with its default (overridable per run)."""

    name: str
    default: str


@dataclass(frozen=True)
class Job:
    """A job as the local runner runs it."""

    key: str
    name: str
    tasks: tuple[Task, ...]
    parameters: tuple[JobParameter, ...] = ()
    source: str = ""
    #: Runs allowed at once (Databricks' default is 1); one more is skipped, or queued.
    max_concurrent_runs: int = 1
    #: ``queue.enabled``: a run past the limit waits for a slot instead of being skipped.
    queue: bool = False
    _by_key: dict[str, Task] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update({task.key: task for task in self.tasks})

    def task(self, key: str) -> Task:
        """The task with ``task_key == key``."""
        return self._by_key[key]

    def has_task(self, key: str) -> bool:
        """True when the job has a task ``key``."""
        return key in self._by_key

    def where(self, task: str | None = None) -> str:
        """``"<file>: job '<key>' task '<task>'"`` for messages."""
        source = self._by_key[task].source if task and task in self._by_key else self.source
        return f"{source}: job '{self.key}'" + (f" task '{task}'" if task else "")


def as_text(value: Any) -> str:
    """A YAML scalar as the Jobs API sees it (booleans ``true``/``false``, else JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return json.dumps(value)


def parse_job(
    key: str,
    data: Mapping[str, Any],
    *,
    source: str,
    task_sources: Mapping[str, str] | None = None,
    job_ids: Mapping[int, str] | None = None,
) -> Job:
    """Parse a resolved job dict into a :class:`Job`.

    Args:
        key: the job's resource key.
        data: the job as the bundle resolves it (``name``, ``tasks``, ``parameters``...).
        source: the file that defines the job (for messages).
        task_sources: file per task key, when tasks come from several files.
        job_ids: local job id -> job key, for ``run_job_task.job_id``.

    Raises:
        BundleError: every task the local runner cannot run, each named with its file,
            job, task and type.
    """
    problems: list[str] = []
    sources = task_sources or {}
    tasks: list[Task] = []
    for index, raw in enumerate(data.get("tasks") or []):
        task_key = str(raw.get("task_key") or f"tasks[{index}]")
        where = f"{sources.get(task_key, source)}: job '{key}' task '{task_key}'"
        task = _parse_task(
            raw, where, sources.get(task_key, source), problems, job_ids or {}, nested=False
        )
        if task is not None:
            tasks.append(task)
    parameters = tuple(
        JobParameter(str(p.get("name")), as_text(p.get("default")))
        for p in data.get("parameters") or []
    )
    limit_text = as_text(data.get("max_concurrent_runs", 1))
    limit = int(limit_text) if limit_text.isdigit() else -1
    if limit < 0:
        problems.append(
            f"{source}: job '{key}' max_concurrent_runs is {limit_text!r}; it must be a "
            "whole number >= 0 (Databricks' default is 1)"
        )
    queue_settings = data.get("queue")
    queue = isinstance(queue_settings, Mapping) and as_text(queue_settings.get("enabled")) == "true"
    if problems:
        raise BundleError(problems, summary=f"job '{key}' cannot run locally, nothing was run")
    return Job(
        key=key,
        name=str(data.get("name") or key),
        tasks=tuple(tasks),
        parameters=parameters,
        source=source,
        max_concurrent_runs=limit,
        queue=queue,
    )


def _parse_task(
    raw: Mapping[str, Any],
    where: str,
    source: str,
    problems: list[str],
    job_ids: Mapping[int, str],
    *,
    nested: bool,
) -> Task | None:
    types = [k for k in raw if k.endswith("_task") and raw[k] is not None]
    if len(types) != 1:
        problems.append(
            f"{where}: declares {'no task type' if not types else ' and '.join(types)}; "
            f"a task needs exactly one of {', '.join(RUNNABLE_TYPES)}"
        )
        return None
    kind = types[0]
    if kind not in RUNNABLE_TYPES:
        problems.append(
            f"{where}: {kind} is not supported by the local runner (it runs "
            f"{', '.join(RUNNABLE_TYPES)}); run this job on Databricks, or make the step a "
            "python_wheel_task entry point"
        )
        return None
    body = raw[kind] or {}
    spec = _parse_spec(kind, body, where, source, problems, job_ids, nested=nested)
    if spec is None:
        return None
    run_if_text = str(raw.get("run_if") or RunIf.ALL_SUCCESS.value)
    if run_if_text not in RunIf.__members__:
        problems.append(
            f"{where}: run_if '{run_if_text}' is not one of {', '.join(RunIf.__members__)}"
        )
        return None
    depends_on = tuple(
        Dependency(
            str(dep.get("task_key")),
            None if dep.get("outcome") is None else as_text(dep.get("outcome")),
        )
        for dep in raw.get("depends_on") or []
    )
    try:
        max_retries = int(raw.get("max_retries") or 0)
        interval = int(raw.get("min_retry_interval_millis") or 0)
        timeout = int(raw["timeout_seconds"]) if raw.get("timeout_seconds") else None
    except (TypeError, ValueError) as exc:
        problems.append(
            f"{where}: max_retries, min_retry_interval_millis and timeout_seconds "
            f"must be integers ({exc})"
        )
        return None
    return Task(
        key=str(raw.get("task_key")),
        spec=spec,
        depends_on=depends_on,
        run_if=RunIf(run_if_text),
        max_retries=3 if max_retries < 0 else max_retries,
        min_retry_interval_millis=interval,
        timeout_seconds=timeout,
        source=source,
    )


def _parse_spec(
    kind: str,
    body: Mapping[str, Any],
    where: str,
    source: str,
    problems: list[str],
    job_ids: Mapping[int, str],
    *,
    nested: bool,
) -> TaskSpec | None:
    if kind == "python_wheel_task":
        if not body.get("package_name") or not body.get("entry_point"):
            problems.append(f"{where}: python_wheel_task needs package_name and entry_point")
            return None
        named = body.get("named_parameters")
        if named is not None and body.get("parameters"):
            problems.append(
                f"{where}: python_wheel_task takes parameters or named_parameters, not both"
            )
            return None
        return PythonWheelTask(
            package_name=str(body["package_name"]),
            entry_point=str(body["entry_point"]),
            parameters=tuple(as_text(p) for p in body.get("parameters") or []),
            named_parameters=None
            if named is None
            else tuple((str(k), as_text(v)) for k, v in named.items()),
        )
    if kind == "condition_task":
        op = str(body.get("op"))
        if op not in ConditionOp.__members__:
            problems.append(
                f"{where}: condition_task.op '{op}' is not one of "
                f"{', '.join(ConditionOp.__members__)}"
            )
            return None
        return ConditionTask(ConditionOp(op), as_text(body.get("left")), as_text(body.get("right")))
    if kind == "run_job_task":
        job_id = body.get("job_id")
        job_key = job_ids.get(job_id) if isinstance(job_id, int) else None
        if job_key is None:
            problems.append(
                f"{where}: run_job_task.job_id {job_id!r} does not name a job of this bundle; "
                "write job_id: ${resources.jobs.<key>.id}"
            )
            return None
        return RunJobTask(
            job_key=job_key,
            job_parameters=tuple(
                (str(k), as_text(v)) for k, v in (body.get("job_parameters") or {}).items()
            ),
        )
    # for_each_task
    if nested:
        problems.append(f"{where}: a for_each_task cannot be nested in another for_each_task")
        return None
    inner = body.get("task")
    if not isinstance(inner, Mapping) or body.get("inputs") is None:
        problems.append(f"{where}: for_each_task needs inputs and a task")
        return None
    inner_where = f"{where} for_each_task.task '{inner.get('task_key')}'"
    task = _parse_task(inner, inner_where, source, problems, job_ids, nested=True)
    if task is None:
        return None
    inputs = body["inputs"]
    return ForEachTask(
        inputs=inputs if isinstance(inputs, str) else json.dumps(inputs),
        task=task,
        concurrency=int(body.get("concurrency") or 1),
    )
