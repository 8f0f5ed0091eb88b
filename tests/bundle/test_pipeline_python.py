"""The pipelines' Python environment: a job that runs pytest installs what the tests import.

``templates/setup-python.yml`` installs the project with the extras it is given; the tests run
the jobs on local PySpark + Delta, which only the ``local`` extra brings. A CI job that runs
pytest on the ``dev`` extra alone fails at collection (``No module named 'pyspark'``), which
nothing local shows: ``make`` installs ``local,dev``.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

from demand_forecasting.runner.yaml12 import load as load_yaml12

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SETUP_TEMPLATE = "setup-python.yml"


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``a_b[x]==1`` -> ``a-b``)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, f"not a requirement: {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _jobs(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping with a ``steps`` list (jobs, and deployment strategies' hooks)."""
    if isinstance(node, dict):
        if isinstance(node.get("steps"), list):
            yield node
        for value in node.values():
            yield from _jobs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _jobs(value)


def _template_extras(path: Path) -> str:
    """The extras the setup template installs when a job passes none."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r"pip install -e \"\.\[([^\]]+)\]\"", text)
    assert match, f'{path} installs the project with no `pip install -e ".[...]"`'
    if "parameters.extras" not in match.group(1):
        return match.group(1)
    for declared in load_yaml12(text).get("parameters") or []:
        if declared.get("name") == "extras":
            return str(declared.get("default", ""))
    raise AssertionError(f"{path} uses parameters.extras but declares no such parameter")


def _test_imports(tests: Path) -> set[str]:
    """Top-level modules the test suite imports (absolute imports only)."""
    found = set()
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_every_pytest_job_installs_the_extras_the_tests_import(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))
    extras: dict[str, list[str]] = project["project"]["optional-dependencies"]
    declared_in_extras = {_name(r) for reqs in extras.values() for r in reqs}
    # Distributions the tests import that the project lists in one of its extras.
    distributions = packages_distributions()
    needed = {
        _name(dist)
        for module in _test_imports(repo_root / "tests")
        for dist in distributions.get(module, [])
        if _name(dist) in declared_in_extras
    }
    assert "pyspark" in needed, needed  # the scan itself works

    templates = repo_root / ".azure-pipelines" / "templates"
    default_extras = _template_extras(templates / SETUP_TEMPLATE)
    pytest_jobs = 0
    for path in sorted((repo_root / ".azure-pipelines").rglob("*.yml")):
        for job in _jobs(load_yaml12(path.read_text(encoding="utf-8"))):
            steps = job["steps"]
            scripts = " ".join(str(s.get("script", "")) for s in steps if isinstance(s, dict))
            if not re.search(r"\bpytest\b", scripts):
                continue
            pytest_jobs += 1
            setups = [
                s
                for s in steps
                if isinstance(s, dict) and str(s.get("template", "")).endswith(SETUP_TEMPLATE)
            ]
            assert setups, f"{path}: a job runs pytest without {SETUP_TEMPLATE}"
            chosen = str((setups[0].get("parameters") or {}).get("extras", default_extras))
            installed = {_name(r) for extra in chosen.split(",") for r in extras[extra.strip()]}
            missing = sorted(needed - installed)
            assert not missing, (
                f"{path}: the job that runs pytest installs extras {chosen!r}, which lack "
                f"{missing} that the tests import; pass `extras` to {SETUP_TEMPLATE} with the "
                "extra(s) that list them"
            )
    assert pytest_jobs, "no pipeline job runs pytest; the PR pipeline must"
