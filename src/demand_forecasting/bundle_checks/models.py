"""Load every resource through the typed classes of ``databricks-bundles``.

``Job.from_dict`` and its siblings reject unknown fields at any depth and wrong shapes, with
the class that refused; it is the same model the CLI's Python support uses. A target
override is loaded merged over the definition it overrides.
"""

from __future__ import annotations

import importlib
from typing import Any

from demand_forecasting.bundle_checks.findings import WARNING, Finding
from demand_forecasting.bundle_checks.repository import Repository

#: resource type -> (module, class) in databricks-bundles.
RESOURCE_CLASSES = {
    "jobs": ("databricks.bundles.jobs", "Job"),
    "pipelines": ("databricks.bundles.pipelines", "Pipeline"),
    "schemas": ("databricks.bundles.schemas", "Schema"),
    "volumes": ("databricks.bundles.volumes", "Volume"),
    "experiments": ("databricks.bundles.experiments", "MlflowExperiment"),
    "models": ("databricks.bundles.models", "MlflowModel"),
    "registered_models": ("databricks.bundles.registered_models", "RegisteredModel"),
    "quality_monitors": ("databricks.bundles.quality_monitors", "QualityMonitor"),
    "model_serving_endpoints": (
        "databricks.bundles.model_serving_endpoints",
        "ModelServingEndpoint",
    ),
    "clusters": ("databricks.bundles.clusters", "Cluster"),
    "dashboards": ("databricks.bundles.dashboards", "Dashboard"),
    "sql_warehouses": ("databricks.bundles.sql_warehouses", "SqlWarehouse"),
    "secret_scopes": ("databricks.bundles.secret_scopes", "SecretScope"),
    "catalogs": ("databricks.bundles.catalogs", "Catalog"),
    "apps": ("databricks.bundles.apps", "App"),
}


def load_class(resource_type: str) -> Any | None:
    """The databricks-bundles class for a resource type, or None if it has none here."""
    spec = RESOURCE_CLASSES.get(resource_type)
    if spec is None:
        return None
    try:
        return getattr(importlib.import_module(spec[0]), spec[1], None)
    except ImportError:
        return None


def check_models(repo: Repository) -> list[Finding]:
    """Every resource definition, and every target override merged over it, loads."""
    try:
        importlib.import_module("databricks.bundles.core")
    except ImportError:
        return [
            Finding(
                "pyproject.toml",
                "project.optional-dependencies.dev",
                "databricks-bundles-missing",
                "databricks-bundles is not installed; resources were not loaded "
                "through their typed classes (pip install -e '.[dev]')",
                WARNING,
            )
        ]
    findings: list[Finding] = []
    definitions = {(e.resource_type, e.key): e for e in repo.resources() if e.target is None}
    for entry in repo.resources():
        cls = load_class(entry.resource_type)
        if cls is None:
            if entry.target is None:
                findings.append(
                    Finding(
                        entry.file,
                        f"{entry.prefix}.{entry.resource_type}",
                        "no-resource-class",
                        f"databricks-bundles has no class for "
                        f"'{entry.resource_type}' here; not loaded",
                        WARNING,
                    )
                )
            continue
        body = entry.body
        if entry.target is not None:
            base = definitions.get((entry.resource_type, entry.key))
            if base is None:
                findings.append(
                    Finding(
                        entry.file,
                        entry.path,
                        "override-without-definition",
                        f"target '{entry.target}' overrides "
                        f"{entry.resource_type} '{entry.key}', which no file "
                        "defines",
                    )
                )
                continue
            body = _merge(base.body, body)
        try:
            cls.from_dict(body)
        except (ValueError, TypeError, KeyError) as exc:
            findings.append(
                Finding(
                    entry.file,
                    entry.path,
                    "resource-model",
                    f"does not load as databricks-bundles {cls.__name__}: {exc}",
                )
            )
    return findings


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(out[key], value) if key in out else value
        return out
    return b
