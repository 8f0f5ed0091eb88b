"""What the Azure DevOps pipelines say about the bundle, and whether it exists there.

The pipelines name bundle targets and jobs in two ways, both read here: template parameters
(``target``, ``targets``, ``job``, ``jobs``: values passed to a template, and a template's
own ``default``/``values``) and literal ``databricks bundle ... --target X`` / ``bundle run
JOB`` commands in scripts. Variables CI supplies are ``BUNDLE_VAR_<name>`` keys (and
``--var name=...`` arguments).
"""

from __future__ import annotations

import difflib
import re
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from demand_forecasting.bundle_checks.findings import Finding, KeyPart, key_path
from demand_forecasting.bundle_checks.repository import Repository
from demand_forecasting.bundle_checks.walk import strings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TARGET_PARAMETERS = ("target", "targets")
JOB_PARAMETERS = ("job", "jobs")
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell", "inlineScript")
VARIABLE_PREFIX = "BUNDLE_VAR_"
#: The template that installs the pinned Databricks CLI (its ``version`` parameter).
CLI_TEMPLATE = "install-databricks-cli.yml"
_BUNDLE_COMMAND = re.compile(r"databricks\s+bundle\s+([a-z-]+)([^\n;&|]*)")
_VAR_ARGUMENT = re.compile(r"--var[= ]+[\"']?([A-Za-z][A-Za-z0-9_-]*)=")
#: bundle options that take a value (skipped when looking for ``bundle run``'s job key).
_OPTIONS_WITH_VALUE = {
    "-t",
    "--target",
    "--var",
    "-p",
    "--profile",
    "--params",
    "-o",
    "--output",
    "--python-params",
    "--notebook-params",
    "--key",
}


@dataclass(frozen=True)
class Mention:
    """A name the pipelines use: where, and the name."""

    file: str
    key: str
    value: str


@dataclass
class PipelineScan:
    """Everything the pipelines name that the bundle must have."""

    targets: list[Mention] = field(default_factory=list)
    jobs: list[Mention] = field(default_factory=list)
    variables: list[Mention] = field(default_factory=list)
    templates: list[Mention] = field(default_factory=list)

    @property
    def target_names(self) -> set[str]:
        """Targets some pipeline deploys, validates or runs."""
        return {m.value for m in self.targets}

    @property
    def supplied_variables(self) -> set[str]:
        """Bundle variables CI sets (``BUNDLE_VAR_<name>`` or ``--var``)."""
        return {m.value for m in self.variables}


def scan_pipelines(repo: Repository) -> PipelineScan:
    """Collect the targets, jobs, variables and templates every pipeline file names."""
    scan = PipelineScan()
    for file, data in repo.pipeline_files.items():
        _scan_node(file, data, (), scan)
        for path, text in strings(data):
            if path and path[-1] in SCRIPT_KEYS:
                _scan_script(file, key_path(*path), text, scan)
    return scan


def check_pipelines(repo: Repository, scan: PipelineScan) -> list[Finding]:
    """Every template exists; every target, job and variable the pipelines name is in the bundle.

    Also: every bundle target is named by some pipeline (so CI validates it).
    """
    findings: list[Finding] = []
    targets = set(repo.targets)
    jobs = set(repo.definitions("jobs"))
    variables = set(repo.variables)
    for mention in scan.templates:
        base = PurePosixPath(mention.file).parent
        path = mention.value
        resolved = PurePosixPath(path.lstrip("/")) if path.startswith("/") else base / path
        if not (repo.root / _normalise(resolved)).is_file():
            findings.append(
                Finding(
                    mention.file,
                    mention.key,
                    "missing-template",
                    f"template '{path}' does not exist (looked for {_normalise(resolved)})",
                )
            )
    for mention in scan.targets:
        if mention.value not in targets:
            findings.append(
                Finding(
                    mention.file,
                    mention.key,
                    "unknown-target",
                    f"bundle target '{mention.value}' does not exist"
                    f"{_suggest(mention.value, targets)}; targets in "
                    f"databricks.yml: {', '.join(sorted(targets))}",
                )
            )
    for mention in scan.jobs:
        if mention.value not in jobs:
            findings.append(
                Finding(
                    mention.file,
                    mention.key,
                    "unknown-job",
                    f"bundle job '{mention.value}' does not exist"
                    f"{_suggest(mention.value, jobs)}; jobs in resources/: "
                    f"{', '.join(sorted(jobs)) or '(none)'}",
                )
            )
    for mention in scan.variables:
        if mention.value not in variables:
            findings.append(
                Finding(
                    mention.file,
                    mention.key,
                    "unknown-variable",
                    f"CI sets bundle variable '{mention.value}', which "
                    f"databricks.yml does not declare"
                    f"{_suggest(mention.value, variables)}",
                )
            )
    if repo.pipeline_files:
        for target in sorted(targets - scan.target_names):
            findings.append(
                Finding(
                    repo.target_file(target),
                    key_path("targets", target),
                    "target-not-in-ci",
                    f"no pipeline under .azure-pipelines/ validates or deploys "
                    f"target '{target}'; add it to the PR validation",
                )
            )
    return findings


def check_cli_pin(repo: Repository) -> list[Finding]:
    """The CLI version CI installs matches ``databricks-bundles`` and the bundle's constraint.

    The CLI runs ``python.mutators`` with the ``databricks-bundles`` package from ``.venv``;
    the two are released together and must be the same version.
    """
    pinned: tuple[str, str, str] | None = None
    for file, data in repo.pipeline_files.items():
        if not file.endswith(CLI_TEMPLATE) or not isinstance(data, dict):
            continue
        for index, spec in enumerate(data.get("parameters") or []):
            if isinstance(spec, dict) and spec.get("name") == "version":
                pinned = (file, key_path("parameters", index, "default"), str(spec.get("default")))
    if pinned is None:
        return []
    file, where, version = pinned
    findings: list[Finding] = []
    bundles = _pyproject_pin(repo.root / "pyproject.toml", "databricks-bundles")
    if bundles is not None and bundles != version:
        findings.append(
            Finding(
                file,
                where,
                "cli-version-pin",
                f"CI installs Databricks CLI {version} but pyproject.toml pins "
                f"databricks-bundles=={bundles}; they are released together: "
                "pin the same version in both",
            )
        )
    constraint = str((repo.root_config.get("bundle") or {}).get("databricks_cli_version") or "")
    match = re.fullmatch(r"\s*>=\s*([0-9.]+)\s*", constraint)
    if match and _version(version) < _version(match.group(1)):
        findings.append(
            Finding(
                file,
                where,
                "cli-version-pin",
                f"CI installs Databricks CLI {version}, below databricks.yml's "
                f"bundle.databricks_cli_version '{constraint}'",
            )
        )
    return findings


def _pyproject_pin(path: Path, package: str) -> str | None:
    if not path.is_file():
        return None
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    project = data.get("project") or {}
    groups = [
        project.get("dependencies") or [],
        *(project.get("optional-dependencies") or {}).values(),
    ]
    for requirement in (r for group in groups for r in group):
        name, _, version = str(requirement).partition("==")
        if name.strip().lower() == package:
            return version.strip()
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"[0-9]+", text))


def _scan_node(file: str, node: Any, path: tuple[KeyPart, ...], scan: PipelineScan) -> None:
    if isinstance(node, dict):
        template = node.get("template")
        if isinstance(template, str) and "${{" not in template and "$(" not in template:
            scan.templates.append(Mention(file, key_path(*path, "template"), template))
        parameters = node.get("parameters")
        if isinstance(template, str) and isinstance(parameters, dict):
            for name, value in parameters.items():
                _add_named(file, (*path, "parameters", str(name)), str(name), value, scan)
        if not path and isinstance(parameters, list):
            for index, spec in enumerate(parameters):
                if isinstance(spec, dict) and isinstance(spec.get("name"), str):
                    for part in ("default", "values"):
                        if part in spec:
                            _add_named(
                                file, ("parameters", index, part), spec["name"], spec[part], scan
                            )
        for key, value in node.items():
            if str(key).startswith(VARIABLE_PREFIX):
                scan.variables.append(
                    Mention(file, key_path(*path, str(key)), str(key)[len(VARIABLE_PREFIX) :])
                )
            _scan_node(file, value, (*path, str(key)), scan)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _scan_node(file, value, (*path, index), scan)


def _add_named(
    file: str, path: tuple[KeyPart, ...], name: str, value: Any, scan: PipelineScan
) -> None:
    if name in TARGET_PARAMETERS:
        bucket = scan.targets
    elif name in JOB_PARAMETERS:
        bucket = scan.jobs
    else:
        return
    values = value if isinstance(value, list) else [value]
    for index, item in enumerate(values):
        if isinstance(item, str) and item and "$" not in item:
            where = (*path, index) if isinstance(value, list) else path
            bucket.append(Mention(file, key_path(*where), item))


def _scan_script(file: str, key: str, text: str, scan: PipelineScan) -> None:
    for match in _VAR_ARGUMENT.finditer(text):
        scan.variables.append(Mention(file, key, match.group(1)))
    for match in _BUNDLE_COMMAND.finditer(text):
        verb, rest = match.group(1), match.group(2)
        try:
            tokens = shlex.split(rest)
        except ValueError:
            tokens = rest.split()
        positional: list[str] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token in ("-t", "--target") and index + 1 < len(tokens):
                _literal(scan.targets, file, key, tokens[index + 1])
                index += 2
                continue
            if token.startswith("--target="):
                _literal(scan.targets, file, key, token.split("=", 1)[1])
            elif token in _OPTIONS_WITH_VALUE:
                index += 1
            elif not token.startswith("-"):
                positional.append(token)
            index += 1
        if verb == "run" and positional:
            _literal(scan.jobs, file, key, positional[0])


def _literal(bucket: list[Mention], file: str, key: str, value: str) -> None:
    if value and "$" not in value and "{" not in value:
        bucket.append(Mention(file, key, value))


def _normalise(path: PurePosixPath) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
