"""The console-script entry points a ``python_wheel_task`` may name, from pyproject or a wheel.

Databricks runs a wheel task by looking ``entry_point`` up in the installed wheel's
``console_scripts``. The fast source is ``[project.scripts]`` in ``pyproject.toml``; the
authoritative one is ``*.dist-info/entry_points.txt`` inside the built wheel, where each
script's module must also be present and define the function.
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class EntryPoints:
    """A distribution's name and its console scripts.

    Attributes:
        distribution: the project name (``demand-forecasting``).
        scripts: script name -> ``module:function``.
        source: where they were read (``pyproject.toml`` or the wheel's file name).
        missing_targets: script name -> why its ``module:function`` does not exist (in the
            wheel, or under ``src/`` when read from pyproject).
    """

    distribution: str
    scripts: dict[str, str]
    source: str
    missing_targets: dict[str, str] = field(default_factory=dict)


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: ``Demand_Forecasting`` -> ``demand-forecasting``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def from_pyproject(path: Path, source_root: str = "src") -> EntryPoints:
    """``[project] name`` and ``[project.scripts]`` of a ``pyproject.toml``.

    Each script's ``module:function`` is looked up under ``source_root`` (the src layout)
    when that folder exists, so a script pointing at a missing module is caught without
    building the wheel.

    Raises:
        ValueError: the file has no ``[project] name``.
    """
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    project = data.get("project") or {}
    if "name" not in project:
        raise ValueError(f"{path.name}: [project] has no name")
    scripts = {str(k): str(v) for k, v in (project.get("scripts") or {}).items()}
    sources = path.parent / source_root
    missing: dict[str, str] = {}
    if sources.is_dir():

        def read(name: str) -> str | None:
            file = sources / name
            return file.read_text(encoding="utf-8") if file.is_file() else None

        missing = {
            script: f"{problem} (under {source_root}/)"
            for script, target in scripts.items()
            if (problem := _target_problem(read, target))
        }
    return EntryPoints(str(project["name"]), scripts, path.name, missing)


def from_wheel(path: Path) -> EntryPoints:
    """The console scripts in a built wheel, each checked against the wheel's own files.

    Raises:
        ValueError: the file is not a wheel with a ``.dist-info/METADATA``.
    """
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        dist_info = sorted({n.split("/", 1)[0] for n in names if ".dist-info/" in n})
        if not dist_info or f"{dist_info[0]}/METADATA" not in names:
            raise ValueError(f"{path.name}: not a wheel (no *.dist-info/METADATA)")
        metadata = wheel.read(f"{dist_info[0]}/METADATA").decode("utf-8")
        name_line = next(
            (line for line in metadata.splitlines() if line.startswith("Name:")), "Name: ?"
        )
        scripts: dict[str, str] = {}
        entry_file = f"{dist_info[0]}/entry_points.txt"
        if entry_file in names:
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(wheel.read(entry_file).decode("utf-8"))
            if parser.has_section("console_scripts"):
                scripts = {k.strip(): v.strip() for k, v in parser.items("console_scripts")}

        def read(name: str) -> str | None:
            return wheel.read(name).decode("utf-8") if name in names else None

        missing = {
            script: f"{problem} (in the wheel)"
            for script, target in scripts.items()
            if (problem := _target_problem(read, target))
        }
    return EntryPoints(name_line.split(":", 1)[1].strip(), scripts, path.name, missing)


def _target_problem(read: Callable[[str], str | None], target: str) -> str | None:
    """Why ``module:function`` does not exist, or None if it does.

    Args:
        read: file path (``pkg/mod.py``) -> its source, or None if there is no such file.
        target: the entry point's ``module:function``.
    """
    module, _, attribute = target.partition(":")
    module = module.strip()
    function = attribute.split("[", 1)[0].strip().split(".", 1)[0]
    base = module.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        source = read(candidate)
        if source is not None:
            if not function or function in _top_level_names(source):
                return None
            return f"{candidate} defines no '{function}'"
    return f"module {module} does not exist"


def _top_level_names(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            found.update((a.asname or a.name).split(".", 1)[0] for a in node.names)
    return found
