"""The repository's own bundle and pipelines pass every offline check."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_fixtures import SCHEMAS_DIR

from demand_forecasting.bundle_checks import check_repository
from demand_forecasting.bundle_checks.entry_points import from_pyproject, from_wheel
from demand_forecasting.bundle_checks.models import RESOURCE_CLASSES, load_class
from demand_forecasting.bundle_checks.repository import load_repository
from demand_forecasting.bundle_checks.schemas import validate_files


def _errors(findings: list) -> str:
    return "\n".join(str(f) for f in findings if f.is_error)


def test_every_bundle_file_validates_against_the_bundle_schema(
    repo_root: Path, bundle_schema: Path
) -> None:
    repo = load_repository(repo_root)
    assert "databricks.yml" in repo.bundle_files
    assert any(name.startswith("resources/") for name in repo.bundle_files), "no resources/*.yml"
    report = validate_files(repo.bundle_files, bundle_schema, "bundle")
    assert not report.skipped
    assert not report.findings, _errors(report.findings)


def test_every_pipeline_validates_against_the_azure_pipelines_schema(
    repo_root: Path, pipelines_schema: Path
) -> None:
    repo = load_repository(repo_root)
    assert {".azure-pipelines/pr.yml", ".azure-pipelines/cd.yml"} <= set(repo.pipeline_files)
    report = validate_files(repo.pipeline_files, pipelines_schema, "pipelines")
    assert not report.skipped
    assert not [f for f in report.findings if f.is_error], _errors(report.findings)


def test_every_resource_loads_through_databricks_bundles(repo_root: Path) -> None:
    repo = load_repository(repo_root)
    entries = [e for e in repo.resources() if e.target is None]
    assert {e.resource_type for e in entries} >= {"jobs", "schemas", "volumes", "experiments"}
    for entry in entries:
        cls = load_class(entry.resource_type)
        assert cls is not None, f"no databricks-bundles class for {entry.resource_type}"
        cls.from_dict(entry.body)  # raises, naming the field, if anything is off
    assert set(RESOURCE_CLASSES) >= {e.resource_type for e in entries}


def test_the_whole_check_passes_on_the_repository(repo_root: Path) -> None:
    """Everything, with whichever official schemas are present (absent ones are reported)."""
    report = check_repository(repo_root, schemas_dir=SCHEMAS_DIR)
    assert report.ok, _errors(report.findings)


def test_every_entry_point_is_in_the_built_wheel(repo_root: Path, built_wheel: Path) -> None:
    declared = from_pyproject(repo_root / "pyproject.toml")
    built = from_wheel(built_wheel)
    assert built.scripts == declared.scripts, "the wheel's console_scripts differ from pyproject"
    assert not built.missing_targets, built.missing_targets
    report = check_repository(repo_root, schemas_dir=repo_root / "no-schemas", wheel=built_wheel)
    assert report.ok, _errors(report.findings)


def test_the_wheel_carries_the_package_data_the_code_reads(built_wheel: Path) -> None:
    import zipfile

    with zipfile.ZipFile(built_wheel) as wheel:
        files = set(wheel.namelist())
    assert "demand_forecasting/platform/log4j2.properties" in files
    assert "demand_forecasting/conf/datasets/aus_retail.yml" in files


def test_wheel_reader_notices_a_script_whose_module_is_missing(
    built_wheel: Path, tmp_path: Path
) -> None:
    import zipfile

    broken = tmp_path / built_wheel.name
    with zipfile.ZipFile(built_wheel) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith(".dist-info/entry_points.txt"):
                data += b"df-ghost = demand_forecasting.ghost:main\n"
            target.writestr(item, data)
    found = from_wheel(broken)
    assert found.missing_targets["df-ghost"] == (
        "module demand_forecasting.ghost does not exist (in the wheel)"
    )


@pytest.mark.parametrize("target", ["dev", "test", "prod"])
def test_each_target_is_named_by_the_pipelines(repo_root: Path, target: str) -> None:
    from demand_forecasting.bundle_checks.pipelines import scan_pipelines

    assert target in scan_pipelines(load_repository(repo_root)).target_names
