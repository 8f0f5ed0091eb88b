"""Offline proof of the Databricks bundle and the Azure DevOps pipelines.

What the official JSON schemas check (each file on its own), plus what they cannot: top-level
keys and modes, variables declared and resolved in every target, references inside jobs,
Quartz schedules, wheel entry points, compute per target, production rules, and that every
target and job the pipelines name exists. Every finding names the file, the key path and the
rule. Run it as ``python -m demand_forecasting.bundle_checks`` or ``demand-forecasting
check-bundle``.
"""

from __future__ import annotations

from demand_forecasting.bundle_checks.check import Report, check_repository
from demand_forecasting.bundle_checks.findings import Finding

__all__ = ["Finding", "Report", "check_repository"]
