"""Checks on the bundle as each target resolves it (through the local runner's loader).

Per target: every reference resolves; shared targets (``mode: production``) have
``run_as`` a service principal, their bundle folder in the deploying identity's own folder
(never /Workspace/Shared) and no other personal values; schedules are paused everywhere but
in the scheduled targets; the compute the target chooses is complete for every job.
"""

from __future__ import annotations

import re
from typing import Any, cast

from demand_forecasting.bundle_checks import policy
from demand_forecasting.bundle_checks.findings import WARNING, Finding, key_path
from demand_forecasting.bundle_checks.pipelines import PipelineScan
from demand_forecasting.bundle_checks.repository import ROOT_FILE, Repository
from demand_forecasting.bundle_checks.walk import get, strings
from demand_forecasting.runner.bundle import Bundle, load_bundle
from demand_forecasting.runner.errors import BundleError

#: The user the checks resolve ``${workspace.current_user.*}`` to (so it can be spotted).
CHECK_USER = "bundle-check.user@example.com"
_FILE_PREFIX = re.compile(r"^([\w./-]+\.ya?ml): (.*)$", re.DOTALL)


def check_targets(repo: Repository, ci: PipelineScan) -> list[Finding]:
    """Resolve every target and check what only a resolved target shows."""
    findings: list[Finding] = []
    for target in repo.targets:
        environ: dict[str, str] = {}
        if target in ci.target_names:
            environ = {
                f"BUNDLE_VAR_{name}": f"<set by CI: {name}>" for name in ci.supplied_variables
            }
        try:
            bundle = load_bundle(repo.root, target, environ=environ, user_name=CHECK_USER)
        except BundleError as exc:
            findings += [_from_problem(repo, target, problem) for problem in exc.problems]
            continue
        if bundle.mode == "production" or target == policy.PRODUCTION_TARGET:
            findings += _check_shared(repo, target, bundle)
        findings += _check_schedules(repo, target, bundle)
        findings += _check_compute(target, bundle)
        findings += _check_tags(repo, target, bundle)
        findings += _check_dataset(repo, target, bundle)
    return findings


def _check_dataset(repo: Repository, target: str, bundle: Bundle) -> list[Finding]:
    """The target's ``dataset`` names a config the wheel ships (when the sources are here)."""
    folder = repo.root / policy.DATASET_DIR
    name = bundle.variables.get(policy.DATASET_VARIABLE)
    if not folder.is_dir() or not isinstance(name, str) or "/" in name:
        return []
    if (folder / f"{name}.yml").is_file():
        return []
    shipped = sorted(p.stem for p in folder.glob("*.yml"))
    return [
        Finding(
            repo.target_file(target),
            key_path("targets", target, "variables"),
            "unknown-dataset",
            f"target '{target}' runs dataset '{name}', but {policy.DATASET_DIR} has "
            f"no {name}.yml; shipped: {', '.join(shipped) or '(none)'}",
        )
    ]


def _from_problem(repo: Repository, target: str, problem: str) -> Finding:
    match = _FILE_PREFIX.match(problem)
    file, rest = (match.group(1), match.group(2)) if match else (repo.target_file(target), problem)
    return Finding(
        file,
        key_path("targets", target),
        "target-resolution",
        f"target '{target}' does not resolve: {rest}",
    )


def _check_shared(repo: Repository, target: str, bundle: Bundle) -> list[Finding]:
    findings: list[Finding] = []
    file = repo.target_file(target)
    where = key_path("targets", target)
    if bundle.mode != "production":
        findings.append(
            Finding(
                file,
                f"{where}.mode",
                "production-mode",
                f"target '{target}' must deploy with mode: production",
            )
        )
    run_as = bundle.config.get("run_as") or {}
    if not run_as.get("service_principal_name"):
        findings.append(
            Finding(
                file,
                f"{where}.run_as",
                "production-run-as",
                f"target '{target}' must set run_as.service_principal_name (the "
                "jobs run as a service principal, never as whoever deployed)",
            )
        )
    folder_findings = _check_bundle_folder(repo, target, bundle)
    findings += folder_findings
    # Values under the bundle folder name the deploying identity by design; they are checked
    # above, through the folder. Only a folder that passed may excuse them.
    folder = None if folder_findings else str(get(bundle.config, "workspace", "root_path"))
    findings += _check_personal_values(repo, target, bundle, folder)
    return findings


def _declared_workspace_key(repo: Repository, target: str, key: str) -> tuple[str, str, Any]:
    """Where ``workspace.<key>`` is set for ``target``: (file, key path, raw value or None)."""
    in_target = get(repo.targets.get(target), "workspace", key)
    if in_target is not None:
        return repo.target_file(target), key_path("targets", target, "workspace", key), in_target
    at_top = get(repo.root_config, "workspace", key)
    if at_top is not None:
        return ROOT_FILE, key_path("workspace", key), at_top
    return repo.target_file(target), key_path("targets", target, "workspace", key), None


def _check_bundle_folder(repo: Repository, target: str, bundle: Bundle) -> list[Finding]:
    """A shared target's bundle folder is the deploying identity's own, never /Shared.

    The CLI applies the bundle's ``permissions:`` to the bundle folder, except under
    /Workspace/Shared, where every user can manage everything (databricks/cli#1866): there any
    user could replace the wheel that the jobs install and run as the service principal.
    """
    findings: list[Finding] = []
    example = policy.PRODUCTION_ROOT_EXAMPLE
    resolved = get(bundle.config, "workspace") or {}
    for key in policy.WORKSPACE_PATH_KEYS:
        file, where, declared = _declared_workspace_key(repo, target, key)
        value = str(resolved.get(key) or "")
        shared = value.startswith(policy.SHARED_WORKSPACE_PREFIXES) or value.rstrip("/") in {
            prefix.rstrip("/") for prefix in policy.SHARED_WORKSPACE_PREFIXES
        }
        if shared and (declared is not None or key == "root_path"):
            findings.append(
                Finding(
                    file,
                    where,
                    "shared-bundle-folder",
                    f"target '{target}' puts workspace.{key} in '{value}', which every "
                    "workspace user can manage: the CLI sets no permissions on a folder "
                    "under /Workspace/Shared, so anyone could replace the wheel the jobs run "
                    f"as the service principal; set workspace.root_path: {example} (the "
                    "deploying service principal's own folder) and leave the other "
                    "workspace paths to follow it",
                )
            )
    file, where, declared = _declared_workspace_key(repo, target, "root_path")
    if declared is None:
        findings.append(
            Finding(
                file,
                where,
                "production-root-path",
                f"target '{target}' must set workspace.root_path: {example} (production "
                "mode wants it explicit, so that only one copy is deployed: the one of the "
                "service principal that deploys from CI)",
            )
        )
    elif not findings and not str(declared).startswith(policy.PRODUCTION_ROOT_PREFIX):
        findings.append(
            Finding(
                file,
                where,
                "production-root-path",
                f"target '{target}' sets workspace.root_path: '{declared}'; a shared "
                "target's bundle folder must be the deploying identity's own folder, named "
                "through ${workspace.current_user.userName} (never a person's name, never "
                f"a folder others can write): {example}",
            )
        )
    return findings


def _check_personal_values(
    repo: Repository, target: str, bundle: Bundle, folder: str | None
) -> list[Finding]:
    """No value outside the bundle ``folder`` names a user or the deploying identity."""
    findings: list[Finding] = []
    config = {k: v for k, v in bundle.config.items() if k != "variables"}
    workspace = dict(config.get("workspace") or {})
    workspace.pop("current_user", None)
    config["workspace"] = workspace
    for path, text in strings(config):
        if folder and (text == folder or text.startswith(folder + "/")):
            continue
        markers = [m for m in (*policy.PERSONAL_PATH_MARKERS, CHECK_USER) if m in text]
        if markers:
            findings.append(
                Finding(
                    _source(repo, bundle, path),
                    key_path(*path),
                    "personal-path",
                    f"target '{target}' resolves this to '{text}', which is "
                    "personal (a user's folder or the deploying user) and outside the "
                    "bundle folder; shared targets name groups, the service principal "
                    "(${var.runner_principal}) and paths under ${workspace.root_path}",
                )
            )
    return findings


def _source(repo: Repository, bundle: Bundle, path: tuple[Any, ...]) -> str:
    if len(path) >= 3 and path[0] == "resources":
        return bundle.source_of(str(path[1]), str(path[2]))
    return ROOT_FILE


def _check_schedules(repo: Repository, target: str, bundle: Bundle) -> list[Finding]:
    findings: list[Finding] = []
    expected = "UNPAUSED" if target in policy.SCHEDULED_TARGETS else "PAUSED"
    preset = get(bundle.config, "presets", "trigger_pause_status")
    for key, job in bundle.jobs.items():
        for trigger in ("schedule", "trigger"):
            section = job.get(trigger)
            if not isinstance(section, dict):
                continue
            explicit = section.get("pause_status")
            effective = (
                explicit or preset or ("PAUSED" if bundle.mode == "development" else "UNPAUSED")
            )
            if effective == expected:
                continue
            if explicit:
                file, where = (
                    bundle.source_of("jobs", key),
                    key_path("resources", "jobs", key, trigger, "pause_status"),
                )
                fix = "remove pause_status; presets.trigger_pause_status decides per target"
            else:
                file, where = (
                    repo.target_file(target),
                    key_path("targets", target, "presets", "trigger_pause_status"),
                )
                fix = f"set presets.trigger_pause_status: {expected} in target '{target}'"
            findings.append(
                Finding(
                    file,
                    where,
                    "schedule-pause",
                    f"job '{key}' {trigger} is {effective} in target "
                    f"'{target}' but must be {expected}; {fix}",
                )
            )
    return findings


def _check_compute(target: str, bundle: Bundle) -> list[Finding]:
    try:
        from databricks.bundles.jobs import Job, JobDict

        from demand_forecasting.bundle_compute import ComputeSelectionError, choose_compute
    except ImportError:
        return []
    findings: list[Finding] = []
    compute = str(bundle.variables.get("compute", ""))
    for key, body in bundle.jobs.items():
        file = bundle.source_of("jobs", key)
        where = key_path("resources", "jobs", key)
        try:
            chosen: dict[str, Any] = dict(
                choose_compute(Job.from_dict(cast(JobDict, body)), compute, job_key=key).as_dict()
            )
        except (ComputeSelectionError, ValueError, TypeError) as exc:
            findings.append(
                Finding(
                    file,
                    where,
                    "compute",
                    f"target '{target}': job '{key}' has no {compute} compute: {exc}",
                )
            )
            continue
        clusters = {c.get("job_cluster_key") for c in chosen.get("job_clusters") or []}
        environments = {e.get("environment_key") for e in chosen.get("environments") or []}
        for index, task in enumerate(chosen.get("tasks") or []):
            if "python_wheel_task" not in task:
                continue
            keys = [
                k
                for k in ("job_cluster_key", "environment_key", "existing_cluster_id")
                if task.get(k)
            ]
            problem = None
            if len(keys) != 1:
                problem = f"names {keys or 'no compute'}; it must name exactly one"
            elif task.get("job_cluster_key") and task["job_cluster_key"] not in clusters:
                problem = f"job cluster '{task['job_cluster_key']}' is not declared"
            elif task.get("environment_key") and task["environment_key"] not in environments:
                problem = f"environment '{task['environment_key']}' is not declared"
            if problem:
                findings.append(
                    Finding(
                        file,
                        f"{where}.tasks[{index}]",
                        "compute",
                        f"target '{target}' (compute {compute}): task "
                        f"'{task.get('task_key')}' {problem}",
                    )
                )
    return findings


def _check_tags(repo: Repository, target: str, bundle: Bundle) -> list[Finding]:
    tag = get(bundle.config, "presets", "tags", "environment")
    if tag == target:
        return []
    return [
        Finding(
            repo.target_file(target),
            key_path("targets", target, "presets", "tags"),
            "environment-tag",
            f"target '{target}' tags its resources environment={tag!r}; set "
            f"presets.tags.environment: {target} (cost reports group by it)",
            WARNING,
        )
    ]
