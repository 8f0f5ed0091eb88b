"""Dynamic value references (``{{job.parameters.x}}``, ``{{tasks.a.values.b}}``...).

As on Databricks: a reference in a known namespace must be valid (checked before anything
runs); text in ``{{ }}`` outside the known namespaces is left as it is. Identifiers with
characters other than letters, digits and ``_`` are escaped with backticks. Task values that
are not strings substitute as JSON (``true``, ``3``, ``["a", "b"]``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DYNAMIC = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
NAMESPACES = ("job", "task", "tasks", "input", "workspace")
START_TIME_ARGS = (
    "iso_weekday",
    "is_weekday",
    "iso_date",
    "iso_datetime",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "timestamp_ms",
)
TASK_FIELDS = ("run_id", "result_state", "error_code", "execution_count")


class DynamicValueError(ValueError):
    """A dynamic value reference cannot be substituted in this run."""


def split_reference(text: str) -> tuple[str, ...]:
    """``job.parameters.`my-param``` -> ``("job", "parameters", "my-param")``."""
    parts: list[str] = []
    current, quoted = "", False
    for char in text:
        if char == "`":
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return tuple(parts)


def references(text: str) -> list[tuple[str, ...]]:
    """The dynamic references in ``text`` that belong to a known namespace."""
    found = [split_reference(m.group(1)) for m in DYNAMIC.finditer(text)]
    return [ref for ref in found if ref[0] in NAMESPACES]


@dataclass(frozen=True)
class StaticScope:
    """What a task's references may name, known before the job runs.

    Attributes:
        parameters: the job's parameter names.
        tasks: every task key of the job.
        upstream: the tasks this task depends on, directly or not.
        in_for_each: True inside a for_each_task's nested task (``{{input}}`` allowed).
    """

    parameters: frozenset[str]
    tasks: frozenset[str]
    upstream: frozenset[str]
    in_for_each: bool = False


def check(text: str, scope: StaticScope) -> list[str]:
    """Why each known-namespace reference in ``text`` is invalid (empty list: all valid)."""
    reasons = []
    for ref in references(text):
        reason = _check_one(ref, scope)
        if reason:
            reasons.append(f"{{{{{'.'.join(ref)}}}}}: {reason}")
    return reasons


def _check_one(ref: tuple[str, ...], scope: StaticScope) -> str | None:
    head, rest = ref[0], ref[1:]
    if head == "job":
        if rest in (("id",), ("name",), ("run_id",), ("repair_count",), ("trigger", "type")):
            return None
        if len(rest) == 2 and rest[0] == "parameters":
            if rest[1] in scope.parameters:
                return None
            known = ", ".join(sorted(scope.parameters)) or "none"
            return f"the job has no parameter '{rest[1]}' (parameters: {known})"
        if len(rest) == 2 and rest[0] == "start_time" and rest[1] in START_TIME_ARGS:
            return None
        return "not a job reference the local runner knows"
    if head == "task":
        return (
            None
            if rest in (("name",), ("run_id",), ("execution_count",))
            else "not a task reference the local runner knows (task.name, task.run_id, "
            "task.execution_count)"
        )
    if head == "tasks":
        if len(rest) < 2 or not (
            (len(rest) == 3 and rest[1] == "values") or (len(rest) == 2 and rest[1] in TASK_FIELDS)
        ):
            return "write tasks.<task_key>.values.<name> or tasks.<task_key>.<field>"
        if rest[0] not in scope.tasks:
            return f"the job has no task '{rest[0]}'"
        if rest[0] not in scope.upstream:
            return (
                f"task '{rest[0]}' is not upstream of this task; add it to depends_on so "
                "that it has run first"
            )
        return None
    if head == "input":
        return None if scope.in_for_each else "{{input}} exists only inside a for_each_task"
    if head == "workspace":
        return None if rest in (("id",), ("url",)) else "use workspace.id or workspace.url"
    return None


@dataclass(frozen=True)
class RunScope:
    """What references resolve to while one task runs.

    Attributes:
        job_id, job_name, run_id, start_time, parameters: the job run.
        task_name, task_run_id, execution_count: the running task (attempt number).
        tasks: per finished task: ``run_id``, ``result_state``, ``error_code``,
            ``execution_count`` and ``values`` (the task values it set).
        input: the for_each item (absent outside a for_each_task).
        workspace_url: ``{{workspace.url}}``.
    """

    job_id: str
    job_name: str
    run_id: int
    start_time: datetime
    parameters: Mapping[str, str]
    task_name: str = ""
    task_run_id: int = 0
    execution_count: int = 1
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    input: Any = None
    has_input: bool = False
    workspace_url: str = "local"


def substitute(text: str, scope: RunScope) -> str:
    """``text`` with every known-namespace reference replaced by its value in this run.

    Raises:
        DynamicValueError: a referenced task value or input field does not exist.
    """

    def one(match: re.Match[str]) -> str:
        ref = split_reference(match.group(1))
        if ref[0] not in NAMESPACES:
            return match.group(0)
        return as_text(_value(ref, scope), ref)

    return DYNAMIC.sub(one, text)


def substitute_all(texts: Sequence[str], scope: RunScope) -> list[str]:
    """:func:`substitute` over a list."""
    return [substitute(text, scope) for text in texts]


def as_text(value: Any, ref: tuple[str, ...] = ()) -> str:
    """A value as it is substituted into a string (JSON unless it is a string)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except TypeError as exc:
        raise DynamicValueError(f"{{{{{'.'.join(ref)}}}}} is not JSON-serialisable") from exc


def _value(ref: tuple[str, ...], scope: RunScope) -> Any:
    head, rest = ref[0], ref[1:]
    text = "{{" + ".".join(ref) + "}}"
    if head == "job":
        if rest[0] == "parameters":
            return scope.parameters[rest[1]]
        if rest[0] == "start_time":
            return _start_time(scope.start_time, rest[1])
        simple = {
            "id": scope.job_id,
            "name": scope.job_name,
            "run_id": scope.run_id,
            "repair_count": 0,
        }
        return simple.get(rest[0], "MANUAL")  # trigger.type: a local run is started by hand
    if head == "task":
        return {
            "name": scope.task_name,
            "run_id": scope.task_run_id,
            "execution_count": scope.execution_count,
        }[rest[0]]
    if head == "tasks":
        info = scope.tasks.get(rest[0])
        if info is None:
            raise DynamicValueError(f"{text}: task '{rest[0]}' has not run in this job run")
        if rest[1] == "values":
            values = info.get("values") or {}
            if rest[2] not in values:
                raise DynamicValueError(
                    f"{text}: task '{rest[0]}' ({info.get('result_state')}) did not set task "
                    f"value '{rest[2]}' (it sets: {', '.join(values) or 'none'})"
                )
            return values[rest[2]]
        return info.get(rest[1], "")
    if head == "input":
        if not scope.has_input:
            raise DynamicValueError(f"{text}: there is no for_each input here")
        value = scope.input
        for key in rest:
            if not isinstance(value, Mapping) or key not in value:
                raise DynamicValueError(
                    f"{text}: the input {json.dumps(scope.input)} has no field '{key}'"
                )
            value = value[key]
        return value
    return {"id": "0", "url": scope.workspace_url}[rest[0]]  # workspace


def _start_time(start: datetime, arg: str) -> Any:
    simple: dict[str, Any] = {
        "iso_weekday": start.isoweekday(),
        "is_weekday": start.isoweekday() <= 5,
        "iso_date": start.date().isoformat(),
        "iso_datetime": start.isoformat(),
        "year": start.year,
        "month": start.month,
        "day": start.day,
        "hour": start.hour,
        "minute": start.minute,
        "second": start.second,
        "timestamp_ms": int(start.timestamp() * 1000),
    }
    return simple[arg]
