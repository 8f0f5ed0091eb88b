"""The files the checks read: the bundle's YAML per file and the Azure DevOps pipelines.

Every file is parsed on its own with YAML 1.2 scalars (as the Databricks CLI and Azure
DevOps read it: ``on`` is a string key, only ``true``/``false`` are booleans; the runner's
loader), so that each finding can name the file and the key path it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from demand_forecasting.bundle_checks.findings import Finding, key_path
from demand_forecasting.runner.yaml12 import load as load_yaml12

ROOT_FILE = "databricks.yml"
PIPELINES_DIR = ".azure-pipelines"


@dataclass(frozen=True)
class ResourceEntry:
    """One resource mapping as written in one file.

    Attributes:
        file: the file that holds it.
        resource_type: ``jobs``, ``schemas``, ``volumes``, ...
        key: the resource key (``monthly``).
        body: the mapping as written.
        prefix: the key path of its ``resources`` section (``resources`` or
            ``targets.prod.resources``).
        target: the target it overrides, or None for a definition.
    """

    file: str
    resource_type: str
    key: str
    body: dict[str, Any]
    prefix: str
    target: str | None

    @property
    def path(self) -> str:
        """The key path of the resource itself."""
        return f"{self.prefix}.{self.resource_type}.{self.key}"


@dataclass
class Repository:
    """The bundle and pipeline files of a repository, parsed.

    Attributes:
        root: the repository root (holds ``databricks.yml``).
        bundle_files: file -> parsed YAML, ``databricks.yml`` first, then its includes.
        pipeline_files: file -> parsed YAML for every ``.azure-pipelines/**/*.yml``.
        load_findings: files that are missing or do not parse.
    """

    root: Path
    bundle_files: dict[str, Any] = field(default_factory=dict)
    pipeline_files: dict[str, Any] = field(default_factory=dict)
    load_findings: list[Finding] = field(default_factory=list)

    @property
    def root_config(self) -> dict[str, Any]:
        """``databricks.yml`` (empty if it does not load)."""
        data = self.bundle_files.get(ROOT_FILE)
        return data if isinstance(data, dict) else {}

    @property
    def targets(self) -> dict[str, dict[str, Any]]:
        """Target name -> target mapping, from every bundle file (the root file wins)."""
        found: dict[str, dict[str, Any]] = {}
        for _, data in self.mappings():
            for name, body in (data.get("targets") or {}).items():
                found.setdefault(str(name), body if isinstance(body, dict) else {})
        return found

    def target_file(self, target: str) -> str:
        """The file that declares ``target``."""
        for file, data in self.mappings():
            if target in (data.get("targets") or {}):
                return file
        return ROOT_FILE

    @property
    def variables(self) -> dict[str, tuple[str, Any]]:
        """Declared variable -> (file, declaration), from every bundle file."""
        found: dict[str, tuple[str, Any]] = {}
        for file, data in self.mappings():
            for name, spec in (data.get("variables") or {}).items():
                found.setdefault(str(name), (file, spec))
        return found

    def mappings(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(file, top-level mapping) for every bundle file that parsed as a mapping."""
        for file, data in self.bundle_files.items():
            if isinstance(data, dict):
                yield file, data

    def resources(self) -> Iterator[ResourceEntry]:
        """Every resource mapping in every bundle file, definitions and target overrides."""
        for file, data in self.mappings():
            sections: list[tuple[str, str | None, Any]] = [
                ("resources", None, data.get("resources"))
            ]
            for target, body in (data.get("targets") or {}).items():
                if isinstance(body, dict):
                    sections.append(
                        (
                            key_path("targets", str(target), "resources"),
                            str(target),
                            body.get("resources"),
                        )
                    )
            for prefix, target, section in sections:
                if not isinstance(section, dict):
                    continue
                for rtype, items in section.items():
                    if not isinstance(items, dict):
                        continue
                    for key, body in items.items():
                        if isinstance(body, dict):
                            yield ResourceEntry(file, str(rtype), str(key), body, prefix, target)

    def definitions(self, resource_type: str) -> dict[str, ResourceEntry]:
        """Resource key -> its definition (not a target override) for one type."""
        return {
            entry.key: entry
            for entry in self.resources()
            if entry.resource_type == resource_type and entry.target is None
        }


def load_repository(root: Path) -> Repository:
    """Parse ``databricks.yml``, every file its ``include`` globs match, and the pipelines.

    Args:
        root: the repository root.

    Returns:
        The parsed files; problems loading them are in ``load_findings``.
    """
    repo = Repository(root=root.resolve())
    root_path = repo.root / ROOT_FILE
    if not root_path.is_file():
        repo.load_findings.append(
            Finding(ROOT_FILE, "", "missing-file", f"no {ROOT_FILE} in {repo.root}")
        )
        return repo
    _load_into(repo.bundle_files, repo, root_path)
    for index, pattern in enumerate(repo.root_config.get("include") or []):
        matches = sorted(p for p in repo.root.glob(str(pattern)) if p.is_file())
        if not matches:
            repo.load_findings.append(
                Finding(
                    ROOT_FILE,
                    key_path("include", index),
                    "include-matches-nothing",
                    f"include pattern '{pattern}' matches no file; fix the glob or remove it",
                )
            )
        for path in matches:
            if path != root_path:
                _load_into(repo.bundle_files, repo, path)
    pipelines = repo.root / PIPELINES_DIR
    if pipelines.is_dir():
        for path in sorted([*pipelines.rglob("*.yml"), *pipelines.rglob("*.yaml")]):
            _load_into(repo.pipeline_files, repo, path)
    return repo


def _load_into(target: dict[str, Any], repo: Repository, path: Path) -> None:
    name = path.relative_to(repo.root).as_posix()
    try:
        target[name] = load_yaml12(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        repo.load_findings.append(
            Finding(name, where, "yaml-syntax", f"not valid YAML: {exc}".replace("\n", " "))
        )
