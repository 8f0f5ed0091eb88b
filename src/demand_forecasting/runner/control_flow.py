"""Databricks Jobs control flow: run_if, condition outcomes and the job's result state.

The rules, from the Databricks Jobs documentation ("Configure task dependencies",
"If/else condition task"):

- A dependency counts as *failed* when the upstream task FAILED or was UPSTREAM_FAILED, and
  as *excluded* when it was EXCLUDED or is a condition edge whose ``outcome`` did not happen.
  Excluded tasks are skipped and treated as successful.
- A task whose condition edge was not taken is EXCLUDED (the branch is not run); a task
  whose dependencies are all excluded is EXCLUDED whatever its run_if.
- ALL_SUCCESS / AT_LEAST_ONE_SUCCESS / NONE_FAILED not met: UPSTREAM_FAILED.
  AT_LEAST_ONE_FAILED / ALL_FAILED not met: EXCLUDED. ALL_DONE always runs.
- ``==``/``!=`` compare operands as strings (``12.0 == 12`` is false); ``>``, ``>=``, ``<``,
  ``<=`` compare them as numbers.
- The job FAILED when a leaf task (one nothing depends on) failed or was upstream-failed;
  SUCCESS_WITH_FAILURES when another task failed; SUCCESS otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from demand_forecasting.runner.model import ConditionOp, Job, RunIf, Task
from demand_forecasting.runner.results import JobResultState, TaskResult, TaskStatus


@dataclass(frozen=True)
class Decision:
    """Whether a task runs; if not, the status it gets and why."""

    run: bool
    status: TaskStatus | None = None
    reason: str = ""


def decide(task: Task, results: Mapping[str, TaskResult]) -> Decision:
    """Apply ``task.run_if`` to how its dependencies ended (all of them have ended)."""
    if not task.depends_on:
        return Decision(True)
    failed, succeeded, excluded = [], [], []
    for dep in task.depends_on:
        upstream = results[dep.task_key]
        if upstream.status.failed:
            failed.append(dep.task_key)
        elif upstream.status is TaskStatus.EXCLUDED:
            excluded.append(dep.task_key)
        elif (
            dep.outcome is not None
            and upstream.outcome is not None
            and dep.outcome != upstream.outcome
        ):
            return Decision(
                False,
                TaskStatus.EXCLUDED,
                f"condition '{dep.task_key}' was {upstream.outcome}; this branch "
                f"runs when it is {dep.outcome}",
            )
        else:
            succeeded.append(dep.task_key)
    if len(excluded) == len(task.depends_on):
        return Decision(False, TaskStatus.EXCLUDED, "all upstream tasks were excluded")
    ok = len(succeeded) + len(excluded)  # excluded counts as a success
    total = len(task.depends_on)
    rule = task.run_if
    met = {
        RunIf.ALL_SUCCESS: not failed,
        RunIf.AT_LEAST_ONE_SUCCESS: ok > 0,
        RunIf.NONE_FAILED: not failed and bool(succeeded),
        RunIf.ALL_DONE: True,
        RunIf.AT_LEAST_ONE_FAILED: bool(failed),
        RunIf.ALL_FAILED: len(failed) == total,
    }[rule]
    if met:
        return Decision(True)
    handles_failure = rule in (RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED)
    status = TaskStatus.EXCLUDED if handles_failure else TaskStatus.UPSTREAM_FAILED
    detail = f"failed upstream: {', '.join(failed)}" if failed else "no upstream task failed"
    return Decision(False, status, f"run_if {rule.value} not met ({detail})")


class ConditionError(ValueError):
    """A condition cannot be evaluated (a numeric operator on a non-number)."""


def evaluate_condition(op: ConditionOp, left: str, right: str) -> bool:
    """The outcome of ``left <op> right`` with Databricks' comparison rules.

    Raises:
        ConditionError: a numeric comparison with an operand that is not a number.
    """
    if op is ConditionOp.EQUAL_TO:
        return left == right
    if op is ConditionOp.NOT_EQUAL:
        return left != right
    numbers = []
    for side, text in (("left", left), ("right", right)):
        try:
            numbers.append(float(text))
        except ValueError:
            raise ConditionError(
                f"{op.value} compares numbers, but the {side} operand {text!r} is not a number "
                "(EQUAL_TO/NOT_EQUAL compare strings)"
            ) from None
    a, b = numbers
    return {
        ConditionOp.GREATER_THAN: a > b,
        ConditionOp.GREATER_THAN_OR_EQUAL: a >= b,
        ConditionOp.LESS_THAN: a < b,
        ConditionOp.LESS_THAN_OR_EQUAL: a <= b,
    }[op]


def job_result_state(job: Job, results: Mapping[str, TaskResult]) -> JobResultState:
    """SUCCESS, SUCCESS_WITH_FAILURES or FAILED, decided by the leaf tasks."""
    upstream = {dep.task_key for task in job.tasks for dep in task.depends_on}
    leaves = [task.key for task in job.tasks if task.key not in upstream]
    if any(results[key].status.failed for key in leaves if key in results):
        return JobResultState.FAILED
    if any(result.status.failed for result in results.values()):
        return JobResultState.SUCCESS_WITH_FAILURES
    return JobResultState.SUCCESS
