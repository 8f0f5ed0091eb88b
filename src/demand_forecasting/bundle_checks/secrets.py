"""No credentials and no workspace hosts in the repository.

Every file git would commit (tracked, or new and not ignored) is scanned line by line for
the shapes of Databricks tokens, OAuth secrets, cloud keys and private keys, and for the
address of a real workspace. Hosts come from ``DATABRICKS_HOST`` (the pipelines' variable
groups), secrets from the service connection or a secret scope: never from a file, so no
``workspace.host`` is set in the bundle either.

Placeholders (``https://adb-<workspace-id>.<n>.azuredatabricks.net``) do not match: the
patterns want the digits of a real workspace id.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from demand_forecasting.bundle_checks.findings import Finding, key_path
from demand_forecasting.bundle_checks.repository import Repository

#: Folders never scanned when git cannot list the files (state, caches, environments).
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    ".local",
    "dist",
    "build",
    "mlruns",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "__pycache__",
}
_MAX_BYTES = 2_000_000

_TOKEN_FIX = (
    "never commit credentials: revoke it now (it is in git history once pushed), "
    "remove it from the file, and pass it at run time from the pipeline's variable group "
    "(a secret variable) or a Databricks secret scope"
)
_HOST_FIX = (
    "no workspace host is committed: the CLI reads DATABRICKS_HOST, which the pipelines "
    "set from their variable groups (docs/deployment.md, step 4); write a placeholder "
    "such as https://adb-<workspace-id>.<n>.azuredatabricks.net in docs"
)

#: (rule, what it looks like, pattern, what to do)
PATTERNS: tuple[tuple[str, str, re.Pattern[str], str], ...] = (
    (
        "secret-token",
        "a Databricks personal access token",
        re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b"),
        _TOKEN_FIX,
    ),
    (
        "secret-token",
        "a Databricks OAuth secret",
        re.compile(r"\bdose[0-9a-f]{32}\b"),
        _TOKEN_FIX,
    ),
    (
        "secret-token",
        "an Azure storage account key",
        re.compile(r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}"),
        _TOKEN_FIX,
    ),
    (
        "secret-token",
        "a GitHub token",
        re.compile(r"\b(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{60,}"),
        _TOKEN_FIX,
    ),
    (
        "secret-token",
        "an AWS access key id",
        re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        _TOKEN_FIX,
    ),
    (
        "secret-token",
        "a private key",
        re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
        _TOKEN_FIX,
    ),
    (
        "workspace-host",
        "the address of a Databricks workspace",
        re.compile(
            r"\badb-\d{8,}\.\d+\.azuredatabricks\.net"
            r"|\bdbc-[0-9a-f]{8}-[0-9a-f]{4}\.cloud\.databricks\.com"
            r"|\b\d{8,}\.\d+\.gcp\.databricks\.com"
        ),
        _HOST_FIX,
    ),
)


def repository_files(root: Path) -> list[str]:
    """The files git would commit, relative to ``root`` (a walk when git cannot tell)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode("utf-8", "surrogateescape")
        return sorted({name for name in listed.split("\0") if name})
    except (OSError, subprocess.SubprocessError):
        return sorted(_walk(root))


def _walk(root: Path) -> Iterator[str]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in relative.parts) or not path.is_file():
            continue
        yield relative.as_posix()


def _text(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", "replace")


def scan_text(file: str, text: str) -> list[Finding]:
    """Findings for every credential or workspace host in one file's text."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for rule, what, pattern, fix in PATTERNS:
            if pattern.search(line):
                findings.append(Finding(file, f"line {number}", rule, f"{what}: {fix}"))
    return findings


def check_secrets(repo: Repository, files: list[str] | None = None) -> list[Finding]:
    """Credentials or hosts in any file of the repository, and any ``workspace.host``.

    Args:
        repo: the parsed bundle (for ``targets.*.workspace.host``).
        files: the files to scan, relative to the root (default: :func:`repository_files`).
    """
    findings: list[Finding] = []
    for file in files if files is not None else repository_files(repo.root):
        text = _text(repo.root / file)
        if text is not None:
            findings += scan_text(file, text)
    for file, data in repo.mappings():
        sections: list[tuple[tuple[str, ...], object]] = [(("workspace",), data.get("workspace"))]
        sections += [
            (("targets", str(name), "workspace"), body.get("workspace"))
            for name, body in (data.get("targets") or {}).items()
            if isinstance(body, dict)
        ]
        for prefix, workspace in sections:
            if isinstance(workspace, dict) and workspace.get("host") is not None:
                findings.append(
                    Finding(
                        file,
                        key_path(*prefix, "host"),
                        "workspace-host",
                        f"workspace.host is set ({workspace['host']!r}); remove it: {_HOST_FIX}",
                    )
                )
    return findings
