"""Checks the JSON schema cannot make: top-level keys, targets and modes, and variables.

The bundle schema accepts any top-level key and any ``mode`` string; a misspelled
``target:`` or ``mode: developement`` passes it and fails (or silently misbehaves) only at
deploy time. Variables: every ``${var.x}`` must be declared and every target must give every
variable a value (a default, its own value, a lookup, or CI's ``BUNDLE_VAR_x``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from demand_forecasting.bundle_checks import policy
from demand_forecasting.bundle_checks.findings import WARNING, Finding, key_path
from demand_forecasting.bundle_checks.pipelines import PipelineScan
from demand_forecasting.bundle_checks.repository import ROOT_FILE, Repository
from demand_forecasting.bundle_checks.walk import REFERENCE, references, strings

_VALUE_KEYS = ("default", "lookup")


def check_structure(repo: Repository) -> list[Finding]:
    """Top-level keys of every file; the root's bundle name; targets, their keys and modes."""
    findings: list[Finding] = []
    for file, data in repo.mappings():
        for key in data:
            if key not in policy.TOP_LEVEL_KEYS:
                findings.append(
                    Finding(
                        file,
                        str(key),
                        "unknown-top-level-key",
                        f"'{key}' is not a bundle top-level key"
                        f"{_suggest(str(key), policy.TOP_LEVEL_KEYS)}; allowed: "
                        f"{', '.join(sorted(policy.TOP_LEVEL_KEYS))}",
                    )
                )
        if file != ROOT_FILE and "include" in data:
            findings.append(
                Finding(
                    file,
                    "include",
                    "include-outside-root",
                    f"only {ROOT_FILE} may include files; move it there",
                )
            )
    for file, data in repo.bundle_files.items():
        if not isinstance(data, dict) and data is not None:
            findings.append(
                Finding(
                    file, "", "not-a-mapping", "a bundle file must be a mapping at the top level"
                )
            )
    root = repo.root_config
    if not isinstance((root.get("bundle") or {}).get("name"), str):
        findings.append(
            Finding(
                ROOT_FILE,
                "bundle.name",
                "bundle-name",
                "bundle.name is not set; every bundle needs a name",
            )
        )
    findings += _check_targets(repo)
    findings += _check_bundle_permissions(repo)
    return findings


def _check_targets(repo: Repository) -> list[Finding]:
    findings: list[Finding] = []
    targets = repo.targets
    for required in policy.REQUIRED_TARGETS:
        if required not in targets:
            findings.append(
                Finding(
                    ROOT_FILE,
                    "targets",
                    "missing-target",
                    f"target '{required}' is missing; this project deploys "
                    f"{', '.join(policy.REQUIRED_TARGETS)}",
                )
            )
    defaults = [name for name, body in targets.items() if body.get("default") is True]
    if len(defaults) != 1:
        findings.append(
            Finding(
                ROOT_FILE,
                "targets",
                "default-target",
                f"exactly one target must have default: true (found "
                f"{len(defaults)}: {', '.join(defaults) or 'none'}); make it "
                f"'{policy.DEVELOPMENT_TARGET}'",
            )
        )
    elif defaults[0] != policy.DEVELOPMENT_TARGET:
        findings.append(
            Finding(
                ROOT_FILE,
                key_path("targets", defaults[0], "default"),
                "default-target",
                f"the default target is '{defaults[0]}'; a bare `databricks "
                f"bundle deploy` must go to '{policy.DEVELOPMENT_TARGET}'",
            )
        )
    for target, body in targets.items():
        file = repo.target_file(target)
        for key in body:
            if key not in policy.TARGET_KEYS:
                findings.append(
                    Finding(
                        file,
                        key_path("targets", target, str(key)),
                        "unknown-target-key",
                        f"'{key}' is not a target key{_suggest(str(key), policy.TARGET_KEYS)}",
                    )
                )
        mode = body.get("mode")
        if mode is not None and mode not in policy.MODES:
            findings.append(
                Finding(
                    file,
                    key_path("targets", target, "mode"),
                    "bad-mode",
                    f"mode '{mode}' is not a deployment mode"
                    f"{_suggest(str(mode), policy.MODES)}; use "
                    f"{' or '.join(policy.MODES)}",
                )
            )
        required_mode = policy.REQUIRED_MODES.get(target)
        if required_mode is not None and mode in policy.MODES and mode != required_mode:
            findings.append(
                Finding(
                    file,
                    key_path("targets", target, "mode"),
                    "target-mode",
                    f"target '{target}' must use mode: {required_mode}, not {mode}",
                )
            )
        elif required_mode is not None and mode is None:
            findings.append(
                Finding(
                    file,
                    key_path("targets", target),
                    "target-mode",
                    f"target '{target}' sets no mode; it must use mode: {required_mode}",
                )
            )
    return findings


def _check_bundle_permissions(repo: Repository) -> list[Finding]:
    findings: list[Finding] = []
    sections: list[tuple[str, tuple[str, ...], Any]] = []
    for file, data in repo.mappings():
        sections.append((file, ("permissions",), data.get("permissions")))
        for name, body in (data.get("targets") or {}).items():
            if isinstance(body, dict):
                sections.append(
                    (file, ("targets", str(name), "permissions"), body.get("permissions"))
                )
    for file, path, entries in sections:
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            where = key_path(*path, index)
            level = entry.get("level")
            if level not in policy.BUNDLE_PERMISSION_LEVELS:
                findings.append(
                    Finding(
                        file,
                        f"{where}.level",
                        "bundle-permission-level",
                        f"bundle permission level '{level}' is not one of "
                        f"{', '.join(policy.BUNDLE_PERMISSION_LEVELS)} (the CLI "
                        "maps these onto each resource type)",
                    )
                )
            principals = [k for k in policy.PRINCIPAL_KEYS if entry.get(k)]
            if len(principals) != 1:
                findings.append(
                    Finding(
                        file,
                        where,
                        "permission-principal",
                        f"a permission names exactly one of {', '.join(policy.PRINCIPAL_KEYS)}",
                    )
                )
    return findings


def check_variables(repo: Repository, ci: PipelineScan) -> list[Finding]:
    """Every ``${var.x}`` is declared; every target gives every variable a value.

    A target counts a variable as set by CI when some pipeline sets ``BUNDLE_VAR_<name>``
    and that pipeline names the target; a developer's target (never named by CI) must have a
    default or its own value.
    """
    findings: list[Finding] = []
    declared = repo.variables
    used: set[str] = set(policy.MUTATOR_VARIABLES)
    for file, data in repo.mappings():
        for path, text in strings(data):
            for ref in references(text):
                if ref[0] != "var" or len(ref) < 2:
                    continue
                used.add(ref[1])
                if ref[1] not in declared:
                    findings.append(
                        Finding(
                            file,
                            key_path(*path),
                            "undefined-variable",
                            f"${{var.{ref[1]}}} is not declared"
                            f"{_suggest(ref[1], declared)}; declare it under "
                            f"variables: in {ROOT_FILE}",
                        )
                    )
                elif (
                    _is_complex(declared[ref[1]][1])
                    and len(ref) == 2
                    and not (REFERENCE.fullmatch(text.strip()))
                ):
                    findings.append(
                        Finding(
                            file,
                            key_path(*path),
                            "complex-variable-in-string",
                            f"complex variable '{ref[1]}' is used inside a "
                            "longer string; the CLI substitutes a complex "
                            "variable only as a whole value (or reference one "
                            "of its fields)",
                        )
                    )
    for name, (file, spec) in declared.items():
        if spec is not None and not isinstance(spec, dict):
            findings.append(
                Finding(
                    file,
                    key_path("variables", name),
                    "variable-declaration",
                    f"variable '{name}' must be declared as a mapping "
                    "(description:, default:, type:, lookup:)",
                )
            )
        if name not in used:
            findings.append(
                Finding(
                    file,
                    key_path("variables", name),
                    "unused-variable",
                    f"variable '{name}' is declared but no file uses ${{var.{name}}}",
                    WARNING,
                )
            )
    for target, body in repo.targets.items():
        file = repo.target_file(target)
        assigned = body.get("variables") or {}
        for name in assigned:
            if name not in declared:
                findings.append(
                    Finding(
                        file,
                        key_path("targets", target, "variables", name),
                        "undeclared-target-variable",
                        f"target '{target}' sets variable '{name}', which is "
                        f"not declared{_suggest(str(name), declared)}",
                    )
                )
        for name, (_, spec) in declared.items():
            if _has_value(assigned.get(name)) or _has_value(spec, declaration=True):
                continue
            if name in ci.supplied_variables and target in ci.target_names:
                continue
            findings.append(
                Finding(
                    file,
                    key_path("targets", target, "variables"),
                    "unresolved-variable",
                    f"variable '{name}' has no value in target '{target}': give "
                    f"it a default, a value under targets.{target}.variables, "
                    "or a lookup (or have the pipeline that deploys this target "
                    f"set BUNDLE_VAR_{name})",
                )
            )
    return findings


def _is_complex(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("type") == "complex"


def _has_value(spec: Any, *, declaration: bool = False) -> bool:
    if spec is None:
        return False
    if isinstance(spec, dict):
        if any(key in spec for key in _VALUE_KEYS):
            return True
        # A target may give a complex variable its value as a mapping; a declaration
        # mapping without default or lookup has no value.
        return not declaration and bool(spec)
    return not declaration


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
