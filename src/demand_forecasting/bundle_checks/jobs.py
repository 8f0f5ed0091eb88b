"""Checks on every job, as defined and as each target overrides it.

References inside a job (``depends_on``, ``job_cluster_key``, ``environment_key``,
``run_job_task``), the DAG (no cycles), the wheel entry points, Quartz schedules, that both
kinds of compute are complete (see :mod:`demand_forecasting.bundle_compute`), and the
operational settings every job must carry (one run at a time, timeout, failure email,
duration health rule, retries), and that no wheel task takes a task value as a parameter (what
grows with the estate goes through the job run's hand-over table).
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from demand_forecasting.bundle_checks import policy
from demand_forecasting.bundle_checks.entry_points import EntryPoints, canonical_name
from demand_forecasting.bundle_checks.findings import Finding, join
from demand_forecasting.bundle_checks.quartz import validate_quartz
from demand_forecasting.bundle_checks.repository import Repository, ResourceEntry
from demand_forecasting.bundle_checks.walk import REFERENCE, get

_JAVA_ONLY_ZONES = frozenset({"UTC", "GMT", "Z"})
#: A dynamic value reference to a task value: ``{{tasks.<task>.values.<key>}}``.
_TASK_VALUE_REFERENCE = re.compile(r"\{\{\s*tasks\.[^}]+\.values\.[^}]+\}\}")


@dataclass(frozen=True)
class _Origin:
    file: str
    path: str


@dataclass
class _JobView:
    """A job as one target sees it, with where each part was written."""

    key: str
    body: dict[str, Any]
    job_origin: _Origin
    task_origins: dict[str, _Origin]


def check_jobs(repo: Repository, entry_points: EntryPoints | None) -> list[Finding]:
    """Run every job check on every job, once as defined and once per overriding target."""
    findings: list[Finding] = []
    job_keys = set(repo.definitions("jobs"))
    for view in _views(repo):
        findings += _check_graph(view, job_keys)
        findings += _check_compute(view)
        findings += _check_schedule(view)
        findings += _check_operations(view)
        findings += _check_task_value_parameters(view)
        if entry_points is not None:
            findings += _check_wheel_tasks(view, entry_points)
    return findings


# ------------------------------------------------------------------------------ views


def _views(repo: Repository) -> list[_JobView]:
    definitions = repo.definitions("jobs")
    overrides: dict[str, dict[str, list[ResourceEntry]]] = {}
    for entry in repo.resources():
        if entry.resource_type == "jobs" and entry.target is not None:
            overrides.setdefault(entry.key, {}).setdefault(entry.target, []).append(entry)
    views = []
    for key, definition in definitions.items():
        views.append(_view(key, [definition]))
        for entries in overrides.get(key, {}).values():
            views.append(_view(key, [definition, *entries]))
    return views


def _view(key: str, entries: list[ResourceEntry]) -> _JobView:
    body: dict[str, Any] = {}
    task_origins: dict[str, _Origin] = {}
    for entry in entries:
        body = _merge(body, entry.body)
        for index, task in enumerate(entry.body.get("tasks") or []):
            if isinstance(task, dict) and task.get("task_key") is not None:
                task_origins.setdefault(
                    str(task["task_key"]), _Origin(entry.file, f"{entry.path}.tasks[{index}]")
                )
    for list_key, item_key in policy.JOB_KEYED_LISTS.items():
        if isinstance(body.get(list_key), list):
            body[list_key] = _merge_by_key(body[list_key], item_key)
    return _JobView(key, body, _Origin(entries[0].file, entries[0].path), task_origins)


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(out[key], value) if key in out else value
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [*a, *b]
    return a if b is None else b


def _merge_by_key(items: list[Any], key: str) -> list[Any]:
    merged: dict[str, Any] = {}
    loose = []
    for item in items:
        if isinstance(item, dict) and item.get(key) is not None:
            name = str(item[key])
            merged[name] = _merge(merged[name], item) if name in merged else item
        else:
            loose.append(item)
    return [*merged.values(), *loose]


def _tasks(view: _JobView) -> list[tuple[dict[str, Any], _Origin]]:
    found = []
    for index, task in enumerate(view.body.get("tasks") or []):
        if isinstance(task, dict):
            origin = view.task_origins.get(
                str(task.get("task_key")),
                _Origin(view.job_origin.file, f"{view.job_origin.path}.tasks[{index}]"),
            )
            found.append((task, origin))
    return found


# ------------------------------------------------------------------------------ graph


def _check_graph(view: _JobView, job_keys: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    keys: list[str] = [str(task.get("task_key")) for task, _ in _tasks(view)]
    for task, origin in _tasks(view):
        task_key = str(task.get("task_key"))
        if keys.count(task_key) > 1:
            findings.append(
                Finding(
                    origin.file,
                    f"{origin.path}.task_key",
                    "duplicate-task-key",
                    f"task_key '{task_key}' appears {keys.count(task_key)} times "
                    f"in job '{view.key}'",
                )
            )
        for index, dependency in enumerate(task.get("depends_on") or []):
            name = dependency.get("task_key") if isinstance(dependency, dict) else None
            if name not in keys:
                findings.append(
                    Finding(
                        origin.file,
                        f"{origin.path}.depends_on[{index}].task_key",
                        "dangling-depends-on",
                        f"task '{task_key}' depends on '{name}', which is not a "
                        f"task of job '{view.key}'{_suggest(str(name), keys)}",
                    )
                )
        run_job = task.get("run_job_task")
        if isinstance(run_job, dict):
            findings += _check_run_job(view, task_key, origin, run_job, job_keys)
    cycle = _find_cycle(view)
    if cycle:
        _, origin = next((t, o) for t, o in _tasks(view) if str(t.get("task_key")) == cycle[0])
        findings.append(
            Finding(
                origin.file,
                f"{origin.path}.depends_on",
                "dependency-cycle",
                f"job '{view.key}' has a dependency cycle: {' -> '.join(cycle)}",
            )
        )
    return findings


def _check_run_job(
    view: _JobView, task_key: str, origin: _Origin, run_job: dict[str, Any], job_keys: set[str]
) -> list[Finding]:
    where = f"{origin.path}.run_job_task.job_id"
    job_id = run_job.get("job_id")
    match = REFERENCE.fullmatch(job_id) if isinstance(job_id, str) else None
    parts = match.group(1).split(".") if match else []
    if len(parts) == 4 and parts[:2] == ["resources", "jobs"] and parts[3] == "id":
        if parts[2] not in job_keys:
            return [
                Finding(
                    origin.file,
                    where,
                    "dangling-run-job",
                    f"task '{task_key}' runs job '{parts[2]}', which this bundle does "
                    f"not define{_suggest(parts[2], job_keys)}",
                )
            ]
        if parts[2] == view.key:
            return [
                Finding(
                    origin.file,
                    where,
                    "dangling-run-job",
                    f"task '{task_key}' runs its own job '{view.key}'",
                )
            ]
        return []
    return [
        Finding(
            origin.file,
            where,
            "dangling-run-job",
            f"task '{task_key}': job_id must be ${{resources.jobs.<key>.id}} so that it "
            f"follows each target's deployment, not {job_id!r}",
        )
    ]


def _find_cycle(view: _JobView) -> list[str]:
    edges = {
        str(task.get("task_key")): [
            str(d.get("task_key")) for d in task.get("depends_on") or [] if isinstance(d, dict)
        ]
        for task, _ in _tasks(view)
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in edges:
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


# ---------------------------------------------------------------------------- compute


def _check_compute(view: _JobView) -> list[Finding]:
    findings: list[Finding] = []
    clusters = {
        str(c.get("job_cluster_key")): c
        for c in view.body.get("job_clusters") or []
        if isinstance(c, dict)
    }
    environments = {
        str(e.get("environment_key")): e
        for e in view.body.get("environments") or []
        if isinstance(e, dict)
    }
    for task, origin in _tasks(view):
        findings += _check_task_compute(
            view, task, origin.file, origin.path, clusters, environments
        )
        nested = get(task, "for_each_task", "task")
        if isinstance(nested, dict):
            findings += _check_task_compute(
                view,
                nested,
                origin.file,
                f"{origin.path}.for_each_task.task",
                clusters,
                environments,
            )
    return findings


def _check_task_compute(
    view: _JobView,
    task: dict[str, Any],
    file: str,
    path: str,
    clusters: dict[str, Any],
    environments: dict[str, Any],
) -> list[Finding]:
    findings: list[Finding] = []
    task_key = task.get("task_key")
    cluster_key = task.get("job_cluster_key")
    environment_key = task.get("environment_key")
    if cluster_key is not None and str(cluster_key) not in clusters:
        findings.append(
            Finding(
                file,
                f"{path}.job_cluster_key",
                "unknown-job-cluster",
                f"task '{task_key}' uses job cluster '{cluster_key}', which job "
                f"'{view.key}' does not declare under job_clusters"
                f"{_suggest(str(cluster_key), clusters)}",
            )
        )
    if environment_key is not None and str(environment_key) not in environments:
        findings.append(
            Finding(
                file,
                f"{path}.environment_key",
                "unknown-environment",
                f"task '{task_key}' uses environment '{environment_key}', which "
                f"job '{view.key}' does not declare under environments"
                f"{_suggest(str(environment_key), environments)}",
            )
        )
    kind = next(
        (k for k in (*policy.COMPUTE_TASK_TYPES, *policy.NON_COMPUTE_TASK_TYPES) if k in task), None
    )
    if kind in policy.NON_COMPUTE_TASK_TYPES:
        for key in ("job_cluster_key", "environment_key", "libraries", "new_cluster"):
            if key in task:
                findings.append(
                    Finding(
                        file,
                        f"{path}.{key}",
                        "compute-on-control-task",
                        f"task '{task_key}' is a {kind}; it runs no code, so remove {key}",
                    )
                )
    if kind != "python_wheel_task":
        return findings
    if cluster_key is None or environment_key is None:
        findings.append(
            Finding(
                file,
                path,
                "incomplete-compute",
                f"wheel task '{task_key}' must name both job_cluster_key: "
                f"{policy.JOB_CLUSTER_KEY} and environment_key: "
                f"{policy.ENVIRONMENT_KEY}; the target's ${{var.compute}} keeps "
                "one (demand_forecasting.bundle_compute)",
            )
        )
    wheels = [lib.get("whl") for lib in task.get("libraries") or [] if isinstance(lib, dict)]
    wheels = [w for w in wheels if w]
    if not wheels:
        findings.append(
            Finding(
                file,
                f"{path}.libraries",
                "wheel-not-attached",
                f"wheel task '{task_key}' has no libraries: - whl: "
                "../dist/*.whl; on a job cluster the wheel would not be "
                "installed",
            )
        )
    environment = environments.get(str(environment_key)) if environment_key else None
    dependencies = get(environment, "spec", "dependencies") or []
    for index, wheel in enumerate(wheels):
        if environment is not None and wheel not in dependencies:
            findings.append(
                Finding(
                    file,
                    f"{path}.libraries[{index}].whl",
                    "wheel-not-in-environment",
                    f"wheel task '{task_key}' installs {wheel} on the job "
                    f"cluster but environment '{environment_key}' does not list "
                    "it in spec.dependencies; serverless runs would miss it",
                )
            )
    return findings


# --------------------------------------------------------------------------- schedule


def _check_schedule(view: _JobView) -> list[Finding]:
    schedule = view.body.get("schedule")
    if not isinstance(schedule, dict):
        return []
    findings: list[Finding] = []
    where = f"{view.job_origin.path}.schedule"
    expression = schedule.get("quartz_cron_expression")
    if isinstance(expression, str) and "${" not in expression:
        for problem in validate_quartz(expression):
            findings.append(
                Finding(
                    view.job_origin.file,
                    f"{where}.quartz_cron_expression",
                    "bad-cron",
                    f"'{expression}' is not a valid Quartz expression: {problem}",
                )
            )
    zone = schedule.get("timezone_id")
    zones = zoneinfo.available_timezones()
    known = zones | _JAVA_ONLY_ZONES
    if isinstance(zone, str) and "${" not in zone and zones and zone not in known:
        findings.append(
            Finding(
                view.job_origin.file,
                f"{where}.timezone_id",
                "bad-timezone",
                f"'{zone}' is not a time zone id (e.g. Europe/London, UTC){_suggest(zone, zones)}",
            )
        )
    return findings


# ------------------------------------------------------------------------- operations


def _check_operations(view: _JobView) -> list[Finding]:
    findings: list[Finding] = []
    file, path, body = view.job_origin.file, view.job_origin.path, view.body
    if body.get("max_concurrent_runs") != policy.MAX_CONCURRENT_RUNS:
        findings.append(
            Finding(
                file,
                join(path, "max_concurrent_runs"),
                "job-concurrency",
                f"job '{view.key}' must set max_concurrent_runs: "
                f"{policy.MAX_CONCURRENT_RUNS} (a second run would race the "
                "first on the same tables)",
            )
        )
    timeout = body.get("timeout_seconds")
    if timeout in (None, 0):
        findings.append(
            Finding(
                file,
                join(path, "timeout_seconds"),
                "job-timeout",
                f"job '{view.key}' has no timeout_seconds; use ${{var.job_timeout_seconds}}",
            )
        )
    if not get(body, "email_notifications", "on_failure") and not get(
        body, "webhook_notifications", "on_failure"
    ):
        findings.append(
            Finding(
                file,
                join(path, "email_notifications", "on_failure"),
                "job-failure-notification",
                f"job '{view.key}' notifies no one on failure; add "
                "email_notifications.on_failure: [${var.alert_email}]",
            )
        )
    rules = get(body, "health", "rules") or []
    if not any(isinstance(r, dict) and r.get("metric") == policy.HEALTH_METRIC for r in rules):
        findings.append(
            Finding(
                file,
                join(path, "health", "rules"),
                "job-health-rule",
                f"job '{view.key}' has no health rule on "
                f"{policy.HEALTH_METRIC}; add one with value "
                "${var.job_duration_warning_seconds}",
            )
        )
    elif not get(body, "email_notifications", policy.DURATION_WARNING_EVENT) and not get(
        body, "webhook_notifications", policy.DURATION_WARNING_EVENT
    ):
        # Databricks evaluates the rule but only tells those listed for this event.
        findings.append(
            Finding(
                file,
                join(path, "email_notifications", policy.DURATION_WARNING_EVENT),
                "job-health-notification",
                f"job '{view.key}' has a {policy.HEALTH_METRIC} health rule but notifies no "
                f"one when it is exceeded; add email_notifications."
                f"{policy.DURATION_WARNING_EVENT}: [${{var.alert_email}}]",
            )
        )
    for task, origin in _tasks(view):
        if "python_wheel_task" in task and "max_retries" not in task:
            findings.append(
                Finding(
                    origin.file,
                    f"{origin.path}.max_retries",
                    "task-retries",
                    f"wheel task '{task.get('task_key')}' sets no max_retries; "
                    "say how often a transient failure is retried (0 for never)",
                )
            )
    return findings


# ------------------------------------------------------------------------ wheel tasks


def _check_wheel_tasks(view: _JobView, entry_points: EntryPoints) -> list[Finding]:
    findings: list[Finding] = []
    for task, origin in _tasks(view):
        nested = get(task, "for_each_task", "task")
        candidates = [(task, origin.path)]
        if isinstance(nested, dict):
            candidates.append((nested, f"{origin.path}.for_each_task.task"))
        for candidate, path in candidates:
            wheel_task = candidate.get("python_wheel_task")
            if not isinstance(wheel_task, dict):
                continue
            package = wheel_task.get("package_name")
            if canonical_name(str(package)) != canonical_name(entry_points.distribution):
                findings.append(
                    Finding(
                        origin.file,
                        f"{path}.python_wheel_task.package_name",
                        "wrong-package",
                        f"package_name '{package}' is not this project's wheel "
                        f"'{entry_points.distribution}'",
                    )
                )
            entry = wheel_task.get("entry_point")
            if entry not in entry_points.scripts:
                findings.append(
                    Finding(
                        origin.file,
                        f"{path}.python_wheel_task.entry_point",
                        "unknown-entry-point",
                        f"entry point '{entry}' is not a console script of "
                        f"{entry_points.source}"
                        f"{_suggest(str(entry), entry_points.scripts)}; add it "
                        "to [project.scripts] in pyproject.toml",
                    )
                )
            elif entry in entry_points.missing_targets:
                findings.append(
                    Finding(
                        origin.file,
                        f"{path}.python_wheel_task.entry_point",
                        "broken-entry-point",
                        f"entry point '{entry}' = "
                        f"{entry_points.scripts[entry]}: "
                        f"{entry_points.missing_targets[entry]}",
                    )
                )
    return findings


def _check_task_value_parameters(view: _JobView) -> list[Finding]:
    """No wheel task parameter is a task value: Databricks caps a task value at 48 KiB of JSON
    and a run's parameters at 10,000 bytes, and a list of segments outgrows both. Condition
    tasks may compare task values (a count is small)."""
    findings: list[Finding] = []
    for task, origin in _tasks(view):
        wheel_task = get(task, "python_wheel_task")
        if not isinstance(wheel_task, dict):
            continue
        positional = wheel_task.get("parameters") or []
        named = wheel_task.get("named_parameters") or {}
        entries = [(f"parameters[{i}]", v) for i, v in enumerate(positional)]
        entries += [(f"named_parameters.{k}", v) for k, v in named.items()]
        for where, value in entries:
            if isinstance(value, str) and _TASK_VALUE_REFERENCE.search(value):
                findings.append(
                    Finding(
                        origin.file,
                        f"{origin.path}.python_wheel_task.{where}",
                        "task-value-parameter",
                        f"'{value}' passes a task value to a wheel task: a task value is "
                        "capped at 48 KiB and a run's parameters at 10,000 bytes, which a list "
                        "of segments outgrows; have the task read the job run's hand-over "
                        "table instead (demand_forecasting.platform.handover, e.g. train "
                        "--segments from-check-drift)",
                    )
                )
    return findings


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
