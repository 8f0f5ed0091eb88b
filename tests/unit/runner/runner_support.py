"""Helpers for the runner tests: write a small bundle to a folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

ROOT_YAML = """\
bundle:
  name: fixture
include:
  - resources/*.yml
variables:
  catalog:
    description: catalog of every table
  schema:
    default: demand
  horizon:
    default: 3
targets:
  dev:
    default: true
    mode: development
    variables:
      catalog: dev
  prod:
    mode: production
    variables:
      catalog: prod
"""


def write_bundle(
    root: Path, jobs_yaml: str, root_yaml: str = ROOT_YAML, file_name: str = "jobs.yml"
) -> Path:
    """Write ``databricks.yml`` and ``resources/<file_name>`` under ``root``; return ``root``."""
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "databricks.yml").write_text(textwrap.dedent(root_yaml), encoding="utf-8")
    (root / "resources" / file_name).write_text(textwrap.dedent(jobs_yaml), encoding="utf-8")
    return root
