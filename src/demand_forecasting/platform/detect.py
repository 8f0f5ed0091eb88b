"""Platform detection: the one place that knows whether we are inside a Databricks runtime."""

from __future__ import annotations

import os

#: Set by every Databricks Runtime (clusters and serverless) in the driver's environment.
DATABRICKS_RUNTIME_ENV = "DATABRICKS_RUNTIME_VERSION"


def on_databricks() -> bool:
    """Return True inside a Databricks runtime (job cluster, serverless or notebook)."""
    return bool(os.environ.get(DATABRICKS_RUNTIME_ENV))
