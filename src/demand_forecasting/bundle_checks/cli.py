"""``demand-forecasting check-bundle`` / ``python -m demand_forecasting.bundle_checks``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demand_forecasting.bundle_checks.check import check_repository


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the check's options to ``parser``."""
    parser.add_argument(
        "--root",
        type=Path,
        default=Path.cwd(),
        help="repository root holding databricks.yml (default: .)",
    )
    parser.add_argument(
        "--schemas",
        type=Path,
        default=None,
        help="folder with databricks-bundle.schema.json and "
        "azure-pipelines.schema.json (default: <root>/../shared/schemas)",
    )
    parser.add_argument(
        "--bundle-schema",
        type=Path,
        default=None,
        help="the bundle JSON schema (e.g. from `databricks bundle schema`)",
    )
    parser.add_argument(
        "--pipelines-schema", type=Path, default=None, help="the Azure Pipelines JSON schema"
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        default=None,
        help="check entry points against this built wheel instead of pyproject.toml",
    )
    parser.add_argument(
        "--strict-schemas",
        action="store_true",
        help="fail when a schema is missing instead of skipping it",
    )
    parser.add_argument(
        "--format",
        choices=("text", "azure"),
        default="text",
        help="azure: also emit ##vso[task.logissue] lines for Azure DevOps",
    )


def main(args: argparse.Namespace) -> int:
    """Run the checks; print findings; 0 when there is no error, 1 otherwise."""
    report = check_repository(
        args.root,
        schemas_dir=args.schemas,
        bundle_schema=args.bundle_schema,
        pipelines_schema=args.pipelines_schema,
        wheel=args.wheel,
    )
    out = sys.stdout
    for finding in report.findings:
        out.write(f"{finding}\n")
        if args.format == "azure":
            kind = "error" if finding.is_error else "warning"
            out.write(
                f"##vso[task.logissue type={kind};sourcepath={finding.file}]"
                f"{finding.key}: {finding.message} [{finding.rule}]\n"
            )
    for note in report.skipped:
        out.write(f"skipped: {note}\n")
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    out.write(
        f"check-bundle: {errors} error(s), {warnings} warning(s); checked "
        f"{', '.join(report.checked)}\n"
    )
    if args.strict_schemas and report.skipped:
        return 1
    return 0 if report.ok else 1


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run (the ``python -m`` entry)."""
    parser = argparse.ArgumentParser(
        prog="python -m demand_forecasting.bundle_checks",
        description="Check the Databricks bundle and Azure DevOps pipelines offline.",
    )
    configure(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
