"""Notebooks are thin Databricks source-format files: no logic, no installs, package calls only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from bundle_fixtures import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.py"))
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"explore_data.py", "review_run.py"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_source_format(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    assert SEPARATOR in text
    assert "%pip" not in text and "sys.path" not in text
    tree = ast.parse(text)
    logic = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.For | ast.While | ast.Lambda)
    ]
    assert not logic, f"{path.name}: move logic into the package ({logic[0].__class__.__name__})"
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    for node in imports:
        modules = (
            [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        )
        assert all(str(m).startswith("demand_forecasting") for m in modules), (
            f"{path.name} imports {modules}; notebooks call only into demand_forecasting"
        )
