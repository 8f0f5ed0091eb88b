"""Error messages about bundle references: which file, which job and task, which key."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from demand_forecasting.runner.interpolation import Problem, RefPath, format_path

ROOT_FILE = "databricks.yml"


def singular(resource_type: str) -> str:
    """``jobs`` -> ``job``, for messages."""
    return {
        "jobs": "job",
        "schemas": "schema",
        "volumes": "volume",
        "pipelines": "pipeline",
        "experiments": "experiment",
        "registered_models": "registered model",
        "quality_monitors": "quality monitor",
    }.get(resource_type, resource_type)


def suggest(name: object, choices: Mapping[str, Any] | list[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``name``, else ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe_undefined(path: RefPath, merged: dict[str, Any]) -> str:
    """Why reference ``path`` is undefined in the merged configuration, and what to do."""
    namespace = path[0]
    text = format_path(path)
    if namespace == "var":
        declared = merged.get("variables") or {}
        name = path[1] if len(path) > 1 else ""
        if name not in declared:
            return (
                f"undefined variable '{text}'{suggest(name, declared)}; declare it under "
                f"variables: in {ROOT_FILE}"
            )
        return f"variable '{name}' has no field '{format_path(path[2:])}'"
    if namespace == "resources":
        resources = merged.get("resources") or {}
        if len(path) < 3:
            return f"'{text}' is not a resource reference; use resources.<type>.<key>.<field>"
        rtype, key = str(path[1]), str(path[2])
        if key not in (resources.get(rtype) or {}):
            known = resources.get(rtype) or {}
            return (
                f"undefined resource '{text}': no {singular(rtype)} '{key}' in this "
                f"bundle{suggest(key, known)}"
            )
        return f"{singular(rtype)} '{key}' has no field '{format_path(path[3:])}'"
    if namespace in ("bundle", "workspace"):
        return f"undefined reference '${{{text}}}'"
    return (
        f"unknown reference '${{{text}}}': references start with var., bundle., "
        "workspace. or resources."
    )


def describe_problem(
    problem: Problem,
    merged: dict[str, Any],
    resource_sources: dict[tuple[str, str], str],
    task_sources: dict[tuple[str, str], str],
) -> str:
    """``"<file>: job 'j' task 't' <key path>: <reason>"`` for an unresolved reference."""
    path = problem.path
    where = format_path(path)
    source = problem.source
    if len(path) >= 3 and path[0] == "resources":
        rtype, key = str(path[1]), str(path[2])
        source = source or resource_sources.get((rtype, key))
        where = f"{singular(rtype)} '{key}'"
        rest = path[3:]
        if rtype == "jobs" and len(rest) >= 2 and rest[0] == "tasks" and isinstance(rest[1], int):
            tasks = ((merged.get("resources") or {}).get("jobs") or {}).get(key, {}).get("tasks")
            task_key = str(tasks[rest[1]].get("task_key")) if tasks else str(rest[1])
            source = problem.source or task_sources.get((key, task_key)) or source
            where += f" task '{task_key}'"
            rest = rest[2:]
        if rest:
            where += f" {format_path(rest)}"
    return f"{source or ROOT_FILE}: {where}: {problem.reason}"
