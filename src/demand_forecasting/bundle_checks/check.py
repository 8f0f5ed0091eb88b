"""Run every check on a repository and collect the findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from demand_forecasting.bundle_checks import entry_points as entry_points_module
from demand_forecasting.bundle_checks.entry_points import EntryPoints
from demand_forecasting.bundle_checks.findings import WARNING, Finding, sorted_unique
from demand_forecasting.bundle_checks.jobs import check_jobs
from demand_forecasting.bundle_checks.models import check_models
from demand_forecasting.bundle_checks.pipelines import (
    check_cli_pin,
    check_pipelines,
    scan_pipelines,
)
from demand_forecasting.bundle_checks.repository import load_repository
from demand_forecasting.bundle_checks.schemas import (
    BUNDLE_SCHEMA,
    PIPELINES_SCHEMA,
    validate_files,
)
from demand_forecasting.bundle_checks.secrets import check_secrets
from demand_forecasting.bundle_checks.structure import check_structure, check_variables
from demand_forecasting.bundle_checks.targets import check_targets


@dataclass(frozen=True)
class Report:
    """The findings of one check run.

    Attributes:
        findings: every finding, errors and warnings, sorted by file and key.
        skipped: checks that could not run and why (e.g. a schema file is absent).
        checked: what was read (files, targets), for the summary line.
    """

    findings: list[Finding]
    skipped: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """The findings that fail the check."""
        return [f for f in self.findings if f.is_error]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors


def default_schemas_dir(root: Path) -> Path:
    """``<repo>/../shared/schemas``, where the project's offline schemas live."""
    return root.resolve().parent / "shared" / "schemas"


def check_repository(
    root: Path,
    *,
    schemas_dir: Path | None = None,
    bundle_schema: Path | None = None,
    pipelines_schema: Path | None = None,
    wheel: Path | None = None,
) -> Report:
    """Check the bundle and pipelines in ``root``.

    Args:
        root: the repository root (holds ``databricks.yml``).
        schemas_dir: folder with both JSON schemas (default ``<root>/../shared/schemas``).
        bundle_schema: the bundle schema file (overrides ``schemas_dir``).
        pipelines_schema: the Azure Pipelines schema file (overrides ``schemas_dir``).
        wheel: a built wheel to read entry points from (default: ``pyproject.toml``).

    Returns:
        The :class:`Report`; ``report.ok`` is False when any error was found.
    """
    repo = load_repository(root)
    folder = schemas_dir if schemas_dir is not None else default_schemas_dir(repo.root)
    findings: list[Finding] = list(repo.load_findings)
    skipped: list[str] = []
    for files, path, label in (
        (repo.bundle_files, bundle_schema or folder / BUNDLE_SCHEMA, "bundle files"),
        (repo.pipeline_files, pipelines_schema or folder / PIPELINES_SCHEMA, "pipelines"),
    ):
        report = validate_files(files, path, label)
        findings += report.findings
        skipped += report.skipped
    scan = scan_pipelines(repo)
    entry_points = _entry_points(repo.root, wheel, findings)
    if entry_points is not None:
        findings += [
            Finding(
                entry_points.source if wheel is not None else "pyproject.toml",
                f"project.scripts.{script}",
                "broken-entry-point",
                f"console script '{script}' = {entry_points.scripts[script]}: {problem}",
            )
            for script, problem in entry_points.missing_targets.items()
        ]
    findings += check_structure(repo)
    findings += check_variables(repo, scan)
    findings += check_models(repo)
    findings += check_jobs(repo, entry_points)
    findings += check_pipelines(repo, scan)
    findings += check_cli_pin(repo)
    findings += check_secrets(repo)
    if repo.bundle_files:
        findings += check_targets(repo, scan)
    checked = [
        f"{len(repo.bundle_files)} bundle file(s)",
        f"{len(repo.targets)} target(s)",
        f"{len(repo.pipeline_files)} pipeline file(s)",
        f"entry points from {entry_points.source if entry_points else 'nowhere'}",
    ]
    return Report(sorted_unique(findings), skipped, checked)


def _entry_points(root: Path, wheel: Path | None, findings: list[Finding]) -> EntryPoints | None:
    try:
        if wheel is not None:
            return entry_points_module.from_wheel(wheel)
        return entry_points_module.from_pyproject(root / "pyproject.toml")
    except (OSError, ValueError) as exc:
        source = str(wheel) if wheel is not None else "pyproject.toml"
        findings.append(
            Finding(source, "", "entry-points", f"cannot read entry points: {exc}", WARNING)
        )
        return None
