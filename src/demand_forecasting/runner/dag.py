"""Check a job before anything runs, and put its tasks in a deterministic order.

:func:`plan_job` collects every problem of a job and of the jobs it runs (unknown or
duplicate task keys, cycles, condition outcomes, missing entry points, bad dynamic value
references) and raises them together, so one attempt lists everything to fix.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from demand_forecasting.runner import dynamic
from demand_forecasting.runner.entry_points import EntryPoint, EntryPointResolver
from demand_forecasting.runner.errors import BundleError
from demand_forecasting.runner.model import (
    ConditionTask,
    ForEachTask,
    Job,
    PythonWheelTask,
    RunJobTask,
    Task,
)

if TYPE_CHECKING:
    from demand_forecasting.runner.bundle import Bundle


@dataclass(frozen=True)
class JobPlan:
    """A job that passed every check, ready to execute.

    Attributes:
        job: the job.
        order: task keys in the order they are decided (dependencies first; ties keep
            the declaration order).
        entry_points: the function each python_wheel_task calls, by task key (a
            for_each_task's nested task under the for_each task's key).
        children: plans of the jobs its run_job_tasks run, by job key.
    """

    job: Job
    order: tuple[str, ...]
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    children: dict[str, JobPlan] = field(default_factory=dict)


def plan_job(
    bundle: Bundle, job_key: str, resolver: EntryPointResolver, _chain: tuple[str, ...] = ()
) -> JobPlan:
    """Check job ``job_key`` (and every job it runs) and return its plan.

    Raises:
        BundleError: every problem found, each naming the file, job, task and the rule.
    """
    job = bundle.job(job_key)
    problems = check_structure(job)
    order: tuple[str, ...] = ()
    if not problems:
        order = topological_order(job)
        problems += check_references(job)
    entry_points: dict[str, EntryPoint] = {}
    children: dict[str, JobPlan] = {}
    for task in job.tasks:
        spec = task.spec.task.spec if isinstance(task.spec, ForEachTask) else task.spec
        if isinstance(spec, PythonWheelTask):
            try:
                entry_points[task.key] = resolver(spec.package_name, spec.entry_point)
            except (LookupError, ImportError) as exc:
                problems.append(f"{job.where(task.key)}: {exc}")
        elif isinstance(spec, RunJobTask):
            chain = (*_chain, job_key)
            if spec.job_key in chain:
                loop = " -> ".join((*chain[chain.index(spec.job_key) :], spec.job_key))
                problems.append(
                    f"{job.where(task.key)}: run_job_task runs job "
                    f"'{spec.job_key}' in a loop ({loop})"
                )
                continue
            try:
                children[spec.job_key] = plan_job(bundle, spec.job_key, resolver, chain)
            except BundleError as exc:
                problems.append(
                    f"{job.where(task.key)}: run_job_task job '{spec.job_key}' cannot run:"
                )
                problems += [f"    {p}" for p in exc.problems]
    if problems:
        raise BundleError(problems, summary=f"job '{job_key}' cannot run, nothing was run")
    return JobPlan(job, order, entry_points, children)


def check_structure(job: Job) -> list[str]:
    """Duplicate keys, unknown dependencies, bad condition outcomes and cycles."""
    problems = []
    keys = [task.key for task in job.tasks]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(
            f"{job.where(key)}: task_key '{key}' is declared twice in this job; "
            "task keys must be unique (rename one)"
        )
    for task in job.tasks:
        for dep in task.depends_on:
            if dep.task_key == task.key:
                problems.append(
                    f"{job.where(task.key)}: depends on itself; remove it from its own depends_on"
                )
            elif not job.has_task(dep.task_key):
                close = difflib.get_close_matches(dep.task_key, keys, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(
                    f"{job.where(task.key)}: depends_on '{dep.task_key}' is not a "
                    f"task of this job{hint}; tasks: {', '.join(keys)}"
                )
            elif dep.outcome is not None:
                upstream = job.task(dep.task_key)
                if not isinstance(upstream.spec, ConditionTask):
                    problems.append(
                        f"{job.where(task.key)}: depends_on '{dep.task_key}' has "
                        "an outcome, but only a condition_task has outcomes; "
                        "remove outcome"
                    )
                elif dep.outcome not in ("true", "false"):
                    problems.append(
                        f"{job.where(task.key)}: depends_on '{dep.task_key}' "
                        f'outcome \'{dep.outcome}\' must be "true" or "false"'
                    )
    if not problems:
        cycle = find_cycle(job)
        if cycle:
            problems.append(
                f"{job.where()}: tasks depend on each other in a cycle: "
                f"{' -> '.join(cycle)}; remove one of these depends_on"
            )
    return problems


def find_cycle(job: Job) -> list[str] | None:
    """One dependency cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        path.append(key)
        for dep in job.task(key).depends_on:
            if state.get(dep.task_key) == 1:
                return [*path[path.index(dep.task_key) :], dep.task_key]
            if dep.task_key not in state:
                found = visit(dep.task_key)
                if found:
                    return found
        path.pop()
        state[key] = 2
        return None

    for task in job.tasks:
        if task.key not in state:
            found = visit(task.key)
            if found:
                # Report in the direction work flows: upstream -> downstream.
                return list(reversed(found))
    return None


def topological_order(job: Job) -> tuple[str, ...]:
    """Task keys, dependencies first; among ready tasks, declaration order wins."""
    position = {task.key: index for index, task in enumerate(job.tasks)}
    waiting = {task.key: {d.task_key for d in task.depends_on} for task in job.tasks}
    downstream: dict[str, list[str]] = {task.key: [] for task in job.tasks}
    for task in job.tasks:
        for dep in task.depends_on:
            downstream[dep.task_key].append(task.key)
    ready = [(position[k], k) for k, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, key = heapq.heappop(ready)
        order.append(key)
        for child in downstream[key]:
            waiting[child].discard(key)
            if not waiting[child]:
                heapq.heappush(ready, (position[child], child))
    return tuple(order)


def upstream_of(job: Job, key: str) -> frozenset[str]:
    """Every task ``key`` depends on, directly or not."""
    seen: set[str] = set()
    stack = [d.task_key for d in job.task(key).depends_on]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack += [d.task_key for d in job.task(current).depends_on]
    return frozenset(seen)


def task_texts(task: Task) -> Iterable[tuple[str, str, bool]]:
    """``(yaml key, text, inside for_each)`` for every string a task substitutes."""
    spec = task.spec
    if isinstance(spec, PythonWheelTask):
        for index, text in enumerate(spec.parameters):
            yield f"python_wheel_task.parameters[{index}]", text, False
        for name, text in spec.named_parameters or ():
            yield f"python_wheel_task.named_parameters.{name}", text, False
    elif isinstance(spec, ConditionTask):
        yield "condition_task.left", spec.left, False
        yield "condition_task.right", spec.right, False
    elif isinstance(spec, RunJobTask):
        for name, text in spec.job_parameters:
            yield f"run_job_task.job_parameters.{name}", text, False
    elif isinstance(spec, ForEachTask):
        yield "for_each_task.inputs", spec.inputs, False
        for key, text, _ in task_texts(spec.task):
            yield f"for_each_task.task.{key}", text, True


def check_references(job: Job) -> list[str]:
    """Invalid ``{{...}}`` references in any task (unknown tasks, parameters, ...)."""
    problems = []
    parameters = frozenset(p.name for p in job.parameters)
    tasks = frozenset(t.key for t in job.tasks)
    for task in job.tasks:
        upstream = upstream_of(job, task.key)
        for key, text, in_for_each in task_texts(task):
            scope = dynamic.StaticScope(parameters, tasks, upstream, in_for_each)
            for reason in dynamic.check(text, scope):
                problems.append(f"{job.where(task.key)} {key}: {reason}")
    return problems
