"""Databricks run_if and condition rules, as pure functions."""

from __future__ import annotations

import pytest

from demand_forecasting.runner.control_flow import ConditionError, decide, evaluate_condition
from demand_forecasting.runner.model import (
    ConditionOp,
    ConditionTask,
    Dependency,
    PythonWheelTask,
    RunIf,
    Task,
)
from demand_forecasting.runner.results import TaskResult, TaskStatus

S, F, U, X = (
    TaskStatus.SUCCESS,
    TaskStatus.FAILED,
    TaskStatus.UPSTREAM_FAILED,
    TaskStatus.EXCLUDED,
)
WHEEL = PythonWheelTask("pkg", "ep")


def decided(run_if: RunIf, *upstream: TaskStatus) -> TaskStatus | None:
    """None when the task runs; otherwise the status it gets."""
    keys = [f"u{i}" for i in range(len(upstream))]
    task = Task("t", WHEEL, tuple(Dependency(k) for k in keys), run_if)
    results = {
        k: TaskResult(k, "python_wheel_task", s) for k, s in zip(keys, upstream, strict=True)
    }
    decision = decide(task, results)
    return None if decision.run else decision.status


@pytest.mark.parametrize(
    ("run_if", "upstream", "expected"),
    [
        (RunIf.ALL_SUCCESS, (S, S), None),
        (RunIf.ALL_SUCCESS, (S, F), U),
        (RunIf.ALL_SUCCESS, (S, U), U),  # upstream-failed counts as failed
        (RunIf.ALL_SUCCESS, (S, X), None),  # excluded counts as success
        (RunIf.AT_LEAST_ONE_SUCCESS, (F, S), None),
        (RunIf.AT_LEAST_ONE_SUCCESS, (F, U), U),
        (RunIf.NONE_FAILED, (S, X), None),
        (RunIf.NONE_FAILED, (S, F), U),
        (RunIf.ALL_DONE, (F, U), None),
        (RunIf.AT_LEAST_ONE_FAILED, (S, F), None),
        (RunIf.AT_LEAST_ONE_FAILED, (S, S), X),
        (RunIf.ALL_FAILED, (F, U), None),
        (RunIf.ALL_FAILED, (F, S), X),
        (RunIf.ALL_DONE, (X, X), X),  # all upstream excluded: excluded whatever run_if
    ],
)
def test_run_if(
    run_if: RunIf, upstream: tuple[TaskStatus, ...], expected: TaskStatus | None
) -> None:
    assert decided(run_if, *upstream) == expected


def test_condition_edge_not_taken_excludes_the_task() -> None:
    condition = TaskResult("c", "condition_task", S, outcome="false")
    other = TaskResult("o", "python_wheel_task", S)
    task = Task("t", WHEEL, (Dependency("c", "true"), Dependency("o")), RunIf.ALL_DONE)

    decision = decide(task, {"c": condition, "o": other})

    assert (decision.run, decision.status) == (False, X)
    assert "condition 'c' was false" in decision.reason


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        (ConditionOp.EQUAL_TO, "12.0", "12", False),  # strings, as on Databricks
        (ConditionOp.EQUAL_TO, "true", "true", True),
        (ConditionOp.NOT_EQUAL, "a", "b", True),
        (ConditionOp.GREATER_THAN_OR_EQUAL, "12.0", "12", True),  # numbers
        (ConditionOp.GREATER_THAN, "10", "9", True),  # not "10" > "9" as strings
        (ConditionOp.LESS_THAN, "-1", "0", True),
        (ConditionOp.LESS_THAN_OR_EQUAL, "3", "2.5", False),
    ],
)
def test_condition_comparisons(op: ConditionOp, left: str, right: str, expected: bool) -> None:
    assert evaluate_condition(op, left, right) is expected


def test_numeric_operator_on_text_is_an_error() -> None:
    with pytest.raises(ConditionError, match="left operand 'abc' is not a number"):
        evaluate_condition(ConditionOp.GREATER_THAN, "abc", "1")


def test_condition_task_model_keeps_operands_as_text() -> None:
    assert ConditionTask(ConditionOp.EQUAL_TO, "1", "1").op is ConditionOp.EQUAL_TO
