"""Load a Databricks Asset Bundle for one target, as ``databricks bundle validate`` sees it.

``databricks.yml`` and the files its ``include`` globs name are merged (maps merge key by
key, lists concatenate, a scalar set later wins); the chosen target's ``bundle``,
``workspace``, ``artifacts``, ``resources``, ``sync``, ``permissions``, ``variables`` and
``presets`` are merged over the top level, ``mode``/``git``/``run_as`` replace; a job's
``tasks``, ``parameters``, ``job_clusters`` and ``environments`` are then merged by their
key. References (``${var.*}``, ``${bundle.*}``, ``${workspace.*}``, ``${resources.*}``) are
resolved everywhere; anything undefined fails here, naming the file, the job and the key.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from demand_forecasting.runner import yaml12
from demand_forecasting.runner.errors import BundleError
from demand_forecasting.runner.interpolation import (
    Problem,
    RefPath,
    Scope,
    resolve_tree,
    tag_sources,
)
from demand_forecasting.runner.messages import (
    describe_problem,
    describe_undefined,
    singular,
    suggest,
)
from demand_forecasting.runner.model import Job, local_job_id, parse_job
from demand_forecasting.runner.targets import apply_target, merge, select_target, variable_values

log = logging.getLogger(__name__)

#: The names the Databricks CLI accepts for the bundle's root file, in its order.
ROOT_FILES = ("databricks.yml", "databricks.yaml", "bundle.yml", "bundle.yaml")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Bundle:
    """A bundle resolved for one target: the merged configuration and where parts came from.

    Attributes:
        root: the folder holding ``databricks.yml``.
        name: ``bundle.name``.
        target: the selected target.
        mode: the target's ``mode`` (``development``, ``production`` or None).
        config: the whole merged and resolved configuration (no ``targets`` section).
        variables: each variable's resolved value.
        resource_sources: ``(type, key)`` -> file (relative to ``root``) that defines it.
        task_sources: ``(job key, task key)`` -> file that first declares the task.
        files: every YAML file loaded, relative to ``root``.
    """

    root: Path
    name: str
    target: str
    mode: str | None
    config: dict[str, Any]
    variables: dict[str, Any]
    resource_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    task_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    _job_cache: dict[str, Job] = field(default_factory=dict, repr=False, compare=False)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """``resources`` by type then key (``jobs``, ``schemas``, ``registered_models``...)."""
        return dict(self.config.get("resources") or {})

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """The resolved job dicts by key, as the Jobs API (and ``Job.from_dict``) takes them."""
        return dict(self.resources.get("jobs") or {})

    def source_of(self, resource_type: str, key: str) -> str:
        """The file that defines a resource (``databricks.yml`` if unknown)."""
        return self.resource_sources.get((resource_type, key), ROOT_FILES[0])

    def job(self, key: str) -> Job:
        """The typed model of job ``key`` (parsed once).

        Raises:
            BundleError: no such job, or a task the local runner cannot run.
        """
        if key not in self._job_cache:
            jobs = self.jobs
            if key not in jobs:
                raise BundleError(
                    f"{self.root / ROOT_FILES[0]}: no job '{key}' in bundle '{self.name}' for "
                    f"target '{self.target}'{suggest(key, jobs)}; jobs: "
                    f"{', '.join(sorted(jobs)) or '(none)'}"
                )
            self._job_cache[key] = parse_job(
                key,
                jobs[key],
                source=self.source_of("jobs", key),
                task_sources={t: f for (j, t), f in self.task_sources.items() if j == key},
                job_ids={local_job_id(other): other for other in jobs},
            )
        return self._job_cache[key]


def find_root_file(root: Path) -> Path:
    """The bundle's root file in ``root``.

    Raises:
        BundleError: there is none.
    """
    for name in ROOT_FILES:
        if (root / name).is_file():
            return root / name
    raise BundleError(
        f"{root}: no {ROOT_FILES[0]} here; run from inside the bundle or pass --bundle-root"
    )


def load_bundle(
    root: Path,
    target: str | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    user_name: str | None = None,
) -> Bundle:
    """Load, merge and resolve the bundle in ``root`` for ``target``.

    Args:
        root: the folder holding ``databricks.yml``.
        target: the target to select (default: the one with ``default: true``, or the only
            one).
        variables: values that win over everything (like ``databricks bundle --var``).
        environ: where ``BUNDLE_VAR_<name>`` and ``DATABRICKS_HOST`` are read (default:
            ``os.environ``).
        user_name: ``${workspace.current_user.userName}`` (default: the OS user).

    Returns:
        The resolved :class:`Bundle`.

    Raises:
        BundleError: a file does not parse, the target does not exist, a variable has no
            value, or a reference is undefined; every problem names its file and key.
    """
    root = root.resolve()
    env = os.environ if environ is None else environ
    root_file = find_root_file(root)
    problems: list[str] = []
    sources = _load_sources(root, root_file, problems)
    resource_sources, task_sources = _track_sources(sources, problems)
    config: dict[str, Any] = {}
    for name, data in sources:
        config = merge(config, tag_sources(data, name), name)
    if problems:
        raise BundleError(problems, summary=f"bundle in {root} does not load")

    target_name = select_target(config, target, root_file.name)
    target_file = next(
        (name for name, data in sources if target_name in (data.get("targets") or {})),
        root_file.name,
    )
    merged = apply_target(config, target_name, problems, target_file)
    values = variable_values(merged, target_name, variables or {}, env, problems, target_file)
    if problems:
        raise BundleError(problems, summary=f"bundle in {root} does not load")

    merged["bundle"] = _bundle_section(merged, target_name, root)
    merged["workspace"] = _workspace_section(merged, user_name or getpass.getuser(), env)
    for name, value in values.items():
        merged["variables"][name]["value"] = value
    resolved, found = _resolve_references(merged, values)
    if found:
        raise BundleError(
            [describe_problem(p, merged, resource_sources, task_sources) for p in found],
            summary=f"bundle '{merged['bundle'].get('name')}' target '{target_name}': "
            f"{len(found)} undefined reference(s), nothing was run",
        )
    bundle_name = resolved["bundle"].get("name")
    if not bundle_name:
        raise BundleError(f"{root_file.name}: bundle.name is not set; add bundle: name: <name>")
    return Bundle(
        root=root,
        name=str(bundle_name),
        target=target_name,
        mode=resolved["bundle"].get("mode"),
        config=resolved,
        variables={key: resolved["variables"][key].get("value") for key in values},
        resource_sources=resource_sources,
        task_sources=task_sources,
        files=tuple(file for file, _ in sources),
    )


def _resolve_references(
    merged: dict[str, Any], values: dict[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    """Resolve every ``${...}``: first all but ``resources.*``, then ``resources.*``.

    Resource references come second because ``${resources.jobs.x.name}`` is the name after
    presets (the development-mode prefix) apply, as on deploy.
    """

    def describe(path: RefPath) -> str:
        return describe_undefined(path, merged)

    def is_resource(path: RefPath) -> bool:
        return path[0] == "resources"

    found: list[Problem] = []
    roots = {"var": values, "bundle": merged["bundle"], "workspace": merged["workspace"]}
    phase1 = Scope(roots, describe=describe, skip=is_resource)
    resolved = resolve_tree(merged, phase1.lookup, found, skip=is_resource)
    _apply_name_prefix(resolved)
    resources = resolved.get("resources") or {}
    phase2 = Scope(
        {"resources": resources},
        describe=describe,
        special=lambda path: _resource_id(path, resources),
        skip=lambda path: not is_resource(path),
    )
    return resolve_tree(resolved, phase2.lookup, found, skip=lambda p: not is_resource(p)), found


# ---------------------------------------------------------------------------- loading


def _load_sources(root: Path, root_file: Path, problems: list[str]) -> list[tuple[str, Any]]:
    """The root file and the files its ``include`` globs match, in that order."""
    sources = [_read(root, root_file)]
    for pattern in sources[0][1].get("include") or []:
        matches = sorted(p for p in root.glob(str(pattern)) if p.is_file())
        if not matches:
            log.warning("%s: include %r matches no file", root_file.name, pattern)
        sources += [_read(root, path) for path in matches if path != root_file]
    for name, data in sources[1:]:
        if "include" in data:
            problems.append(f"{name}: 'include' is only read from {root_file.name}; move it")
    return sources


def _read(root: Path, path: Path) -> tuple[str, dict[str, Any]]:
    name = path.relative_to(root).as_posix()
    try:
        data = yaml12.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BundleError(f"{name}: not valid YAML: {exc}") from exc
    if data is None:
        return name, {}
    if not isinstance(data, dict):
        raise BundleError(f"{name}: the top level must be a mapping, not {type(data).__name__}")
    return name, data


def _track_sources(
    sources: list[tuple[str, dict[str, Any]]], problems: list[str]
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """Which file defines each resource and task; duplicates across files are errors."""
    resources: dict[tuple[str, str], str] = {}
    tasks: dict[tuple[str, str], str] = {}
    fragments: list[tuple[str, str, Any]] = [
        ("", name, data.get("resources")) for name, data in sources
    ]
    fragments += [
        (f"targets.{target}.", name, (body or {}).get("resources"))
        for name, data in sources
        for target, body in (data.get("targets") or {}).items()
        if isinstance(body, dict | None)
    ]
    for prefix, name, section in fragments:  # top-level definitions first
        for rtype, items in (section or {}).items():
            for key, body in (items or {}).items():
                previous = resources.get((rtype, key))
                if not prefix and previous is not None and previous != name:
                    problems.append(
                        f"{name}: {singular(rtype)} '{key}' is also defined in {previous}; "
                        "a resource key must be unique across files (override it per "
                        "target under targets.<name>.resources instead)"
                    )
                resources.setdefault((rtype, key), name)
                if rtype == "jobs" and isinstance(body, dict):
                    _track_tasks(name, prefix, key, body, tasks, problems)
    return resources, tasks


def _track_tasks(
    name: str,
    prefix: str,
    job_key: str,
    job: dict[str, Any],
    tasks: dict[tuple[str, str], str],
    problems: list[str],
) -> None:
    seen: set[str] = set()
    for index, task in enumerate(job.get("tasks") or []):
        key = task.get("task_key") if isinstance(task, dict) else None
        if not key:
            problems.append(
                f"{name}: job '{job_key}' {prefix}resources.jobs.{job_key}.tasks[{index}]: "
                "a task needs a task_key"
            )
            continue
        if key in seen:
            problems.append(
                f"{name}: job '{job_key}' task '{key}': task_key '{key}' is declared twice in "
                "this job; task keys must be unique (rename one)"
            )
        seen.add(key)
        tasks.setdefault((job_key, str(key)), name)


# ---------------------------------------------------------------- computed sections


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return out.stdout.strip() or UNKNOWN


def _bundle_section(merged: dict[str, Any], target: str, root: Path) -> dict[str, Any]:
    bundle = dict(merged.get("bundle") or {})
    git = dict(bundle.get("git") or {})
    git.setdefault("commit", _git(root, "rev-parse", "HEAD"))
    actual = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    git.setdefault("branch", actual)
    git.setdefault("actual_branch", actual)
    git.setdefault("origin_url", _git(root, "config", "--get", "remote.origin.url"))
    bundle["git"] = git
    bundle["target"] = target
    bundle["environment"] = target  # deprecated alias the CLI still resolves
    return bundle


def short_name(user_name: str) -> str:
    """``first.last@example.com`` -> ``first_last``, as the CLI derives it."""
    local = user_name.split("@", 1)[0]
    return re.sub(r"[^A-Za-z0-9]+", "_", local).strip("_").lower() or "user"


def _workspace_section(merged: dict[str, Any], user: str, env: Mapping[str, str]) -> dict[str, Any]:
    workspace = dict(merged.get("workspace") or {})
    home = f"/Workspace/Users/{user}"
    workspace.setdefault("host", env.get("DATABRICKS_HOST", "local"))
    workspace["current_user"] = {
        "userName": user,
        "short_name": short_name(user),
        "domain_friendly_name": short_name(user),
    }
    root_path = str(workspace.get("root_path") or "~/.bundle/${bundle.name}/${bundle.target}")
    workspace["root_path"] = home + root_path[1:] if root_path.startswith("~") else root_path
    for key, leaf in (
        ("file_path", "files"),
        ("artifact_path", "artifacts"),
        ("state_path", "state"),
        ("resource_path", "resources"),
    ):
        workspace.setdefault(key, "${workspace.root_path}/" + leaf)
    return workspace


def _apply_name_prefix(config: dict[str, Any]) -> None:
    """Prefix job names as ``presets.name_prefix`` (or development mode) does on deploy."""
    presets = config.get("presets") or {}
    prefix = presets.get("name_prefix")
    if prefix is None and (config.get("bundle") or {}).get("mode") == "development":
        prefix = f"[dev {config['workspace']['current_user']['short_name']}] "
    for key, job in ((config.get("resources") or {}).get("jobs") or {}).items():
        if isinstance(job, dict):
            job["name"] = f"{prefix or ''}{job.get('name') or key}"


def _resource_id(path: RefPath, resources: Mapping[str, Any]) -> Any:
    """A local stand-in for ``${resources.<type>.<key>.id}`` (None: not an id reference)."""
    if len(path) != 4 or path[0] != "resources" or path[3] != "id":
        return None
    rtype, key = str(path[1]), str(path[2])
    if key not in (resources.get(rtype) or {}):
        return None
    return local_job_id(key) if rtype == "jobs" else f"local-{rtype}:{key}"


__all__ = ["Bundle", "find_root_file", "load_bundle", "short_name"]
