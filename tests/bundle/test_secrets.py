"""No credentials or workspace hosts in what git would commit (rules secret-token, workspace-host).

The credentials below are assembled at run time, so this file holds none of them itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from bundle_fixtures import edit_yaml

from demand_forecasting.bundle_checks import check_repository
from demand_forecasting.bundle_checks.repository import load_repository
from demand_forecasting.bundle_checks.secrets import check_secrets, scan_text

PAT = "dapi" + "0123456789abcdef" * 2
OAUTH_SECRET = "dose" + "fedcba9876543210" * 2
HOST = "https://adb-" + "4455667788990011" + ".3.azuredatabricks.net"


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (f"export DATABRICKS_TOKEN={PAT}", "secret-token"),
        (f"token: {PAT}-2", "secret-token"),
        (f"client_secret = '{OAUTH_SECRET}'", "secret-token"),
        ("DefaultEndpointsProtocol=https;AccountKey=" + "Ab+/" * 22 + "==", "secret-token"),
        ("-----BEGIN " + "RSA PRIVATE KEY-----", "secret-token"),
        (f"host: {HOST}", "workspace-host"),
        ("https://dbc-" + "1a2b3c4d-5e6f" + ".cloud.databricks.com/", "workspace-host"),
    ],
)
def test_each_shape_is_found_with_its_line(line: str, rule: str) -> None:
    findings = scan_text("notes.md", f"first line\n{line}\n")

    assert [(f.file, f.key, f.rule) for f in findings] == [("notes.md", "line 2", rule)]
    assert "never commit" in findings[0].message or "DATABRICKS_HOST" in findings[0].message


@pytest.mark.parametrize(
    "line",
    [
        "DATABRICKS_HOST: https://adb-<workspace-id>.<n>.azuredatabricks.net",
        "a `dapi...` token is never needed: the pipelines use workload identity federation",
        "export DATABRICKS_TOKEN=$(DATABRICKS_TOKEN)",
        "host: ${var.host}",
    ],
)
def test_placeholders_and_prose_are_not_findings(line: str) -> None:
    assert scan_text("docs/deployment.md", line) == []


def test_a_token_in_a_new_file_fails_the_whole_check(bundle_copy: Path) -> None:
    (bundle_copy / "scratch.py").write_text(f'TOKEN = "{PAT}"\n', encoding="utf-8")

    errors = check_repository(bundle_copy, schemas_dir=bundle_copy / "no-schemas").errors

    assert [(f.file, f.key, f.rule) for f in errors] == [("scratch.py", "line 1", "secret-token")]


def test_git_ignored_files_are_not_scanned_but_untracked_ones_are(bundle_copy: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=bundle_copy, check=True)
    (bundle_copy / ".gitignore").write_text(".local/\n", encoding="utf-8")
    (bundle_copy / ".local").mkdir()
    (bundle_copy / ".local" / "profile.cfg").write_text(f"token = {PAT}\n", encoding="utf-8")
    (bundle_copy / "new_notes.md").write_text(f"workspace: {HOST}\n", encoding="utf-8")

    findings = check_secrets(load_repository(bundle_copy))

    assert [(f.file, f.rule) for f in findings] == [("new_notes.md", "workspace-host")]


def test_a_workspace_host_in_a_target_is_refused(bundle_copy: Path) -> None:
    edit_yaml(
        bundle_copy / "databricks.yml",
        lambda d: d["targets"]["test"].setdefault("workspace", {}).update(host="${var.host}"),
    )

    findings = check_secrets(load_repository(bundle_copy), files=[])

    assert [(f.file, f.key, f.rule) for f in findings] == [
        ("databricks.yml", "targets.test.workspace.host", "workspace-host")
    ]


def test_the_repository_itself_has_no_findings(repo_root: Path) -> None:
    assert check_secrets(load_repository(repo_root)) == []
