"""Merge the bundle's files and one target the way the Databricks CLI does.

Maps merge key by key, lists concatenate and a scalar set later wins; the target's
``bundle``, ``workspace``, ``artifacts``, ``resources``, ``sync``, ``permissions``,
``variables`` and ``presets`` merge over the top level, ``mode``/``git``/``run_as`` replace;
a job's ``tasks``, ``parameters``, ``job_clusters`` and ``environments`` then merge by key.
Variables take ``--var``, then ``BUNDLE_VAR_<name>``, then the target's value or default.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from demand_forecasting.runner.errors import BundleError
from demand_forecasting.runner.messages import suggest

log = logging.getLogger(__name__)

ROOT_FILE = "databricks.yml"
#: Target sections merged over the top level (the rest of a target replaces or is ignored).
TARGET_MERGED = (
    "bundle",
    "workspace",
    "artifacts",
    "resources",
    "sync",
    "permissions",
    "variables",
    "presets",
)
#: Lists inside a job whose items the CLI merges by a key instead of concatenating.
JOB_KEYED_LISTS = {
    "tasks": "task_key",
    "parameters": "name",
    "job_clusters": "job_cluster_key",
    "environments": "environment_key",
}
VARIABLE_ENV_PREFIX = "BUNDLE_VAR_"


def merge(a: Any, b: Any, source: str, path: str = "") -> Any:
    """Merge ``b`` over ``a`` as the CLI does (``source``/``path`` name ``b`` in errors).

    The CLI's merge: maps key by key, lists concatenate, later scalars win."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = (
                merge(out[key], value, source, f"{path}.{key}" if path else str(key))
                if key in out
                else value
            )
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [*a, *b]
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        raise BundleError(
            f"{source}: {path}: cannot merge a {type(b).__name__} into a {type(a).__name__} "
            "defined elsewhere; make both the same shape"
        )
    return b


def select_target(config: dict[str, Any], target: str | None, root_name: str) -> str:
    """``target``, or the default one (``default: true``, or the only one).

    Raises:
        BundleError: no such target, or none can be chosen.
    """
    targets = config.get("targets") or {}
    if target is not None:
        if targets and target not in targets:
            raise BundleError(
                f"{root_name}: no target '{target}'{suggest(target, targets)}; targets: "
                f"{', '.join(targets)}"
            )
        return target
    if not targets:
        return "default"
    defaults = [name for name, body in targets.items() if (body or {}).get("default")]
    if len(defaults) == 1:
        return str(defaults[0])
    if len(targets) == 1:
        return str(next(iter(targets)))
    raise BundleError(
        f"{root_name}: no --target given and {'no' if not defaults else 'more than one'} "
        f"target has default: true; pass one of: {', '.join(targets)}"
    )


def apply_target(
    config: dict[str, Any], target: str, problems: list[str], target_file: str
) -> dict[str, Any]:
    """The configuration with target ``target`` merged over the top level (no ``targets``).

    Undeclared target variables go to ``problems`` (naming ``target_file``).
    """
    body: dict[str, Any] = dict((config.get("targets") or {}).get(target) or {})
    merged = {key: value for key, value in config.items() if key != "targets"}
    declared = merged.get("variables") or {}
    target_vars = body.pop("variables", None) or {}
    variables = {name: _declaration(spec) for name, spec in declared.items()}
    for name, value in target_vars.items():
        if name not in variables:
            problems.append(
                f"{target_file}: targets.{target}.variables.{name}: variable '{name}' is "
                "assigned a value but "
                f"not declared{suggest(name, variables)}; declare it under variables: in "
                f"{ROOT_FILE}"
            )
            continue
        override = _declaration(value, complex_type=variables[name].get("type") == "complex")
        variables[name] = {**variables[name], **override}
    merged["variables"] = variables
    for key in TARGET_MERGED:
        if key != "variables" and body.get(key) is not None:
            merged[key] = merge(merged.get(key), body[key], f"targets.{target}", key)
    bundle = dict(merged.get("bundle") or {})
    if body.get("mode") is not None:
        bundle["mode"] = body["mode"]
    if body.get("git") is not None:
        bundle["git"] = merge(bundle.get("git"), body["git"], f"targets.{target}", "git")
    merged["bundle"] = bundle
    if body.get("run_as") is not None:
        merged["run_as"] = body["run_as"]
    for job in ((merged.get("resources") or {}).get("jobs") or {}).values():
        if isinstance(job, dict):
            for list_key, item_key in JOB_KEYED_LISTS.items():
                if isinstance(job.get(list_key), list):
                    job[list_key] = _merge_by_key(job[list_key], item_key)
    return merged


def _declaration(spec: Any, *, complex_type: bool = False) -> dict[str, Any]:
    """A variable declaration or target value in its full form (``default:`` etc.)."""
    full_keys = {"default", "description", "type", "lookup"}
    if (
        isinstance(spec, dict)
        and spec
        and set(spec) <= full_keys
        and not (complex_type and "default" not in spec and "lookup" not in spec)
    ):
        return dict(spec)
    if spec is None:
        return {}
    return {"default": spec}


def _merge_by_key(items: list[Any], key: str) -> list[Any]:
    merged: dict[str, Any] = {}
    loose: list[Any] = []
    for item in items:
        if not isinstance(item, dict) or item.get(key) is None:
            loose.append(item)
            continue
        name = str(item[key])
        merged[name] = merge(merged[name], item, key) if name in merged else item
    return [*merged.values(), *loose]


def variable_values(
    merged: dict[str, Any],
    target: str,
    overrides: Mapping[str, str],
    env: Mapping[str, str],
    problems: list[str],
    target_file: str,
) -> dict[str, Any]:
    """Each variable's value: --var, then BUNDLE_VAR_<name>, then the target's or default."""
    declared: dict[str, dict[str, Any]] = merged["variables"]
    for name in overrides:
        if name not in declared:
            problems.append(
                f"--var {name}: no variable '{name}' is declared{suggest(name, declared)}"
            )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            values[name] = overrides[name]
        elif f"{VARIABLE_ENV_PREFIX}{name}" in env:
            values[name] = env[f"{VARIABLE_ENV_PREFIX}{name}"]
        elif "default" in spec:
            values[name] = spec["default"]
        elif "lookup" in spec:
            values[name] = f"<lookup {spec['lookup']}>"
            log.info("variable %s is a workspace lookup; locally it is %r", name, values[name])
        else:
            problems.append(
                f"{target_file}: variable '{name}' has no value for target '{target}': give it "
                "a default "
                f"under variables:, a value under targets.{target}.variables, or set "
                f"{VARIABLE_ENV_PREFIX}{name}"
            )
    return values
