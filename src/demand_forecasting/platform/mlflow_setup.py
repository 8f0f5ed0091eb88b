"""MLflow tracking and model registry: Databricks + Unity Catalog, or a local sqlite store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class MlflowStore:
    """Where runs and models go."""

    tracking_uri: str
    registry_uri: str
    #: Artifact root for experiments created locally (None on Databricks: managed there).
    artifact_root: str | None


def local_store(mlflow_dir: Path) -> MlflowStore:
    """A sqlite tracking + registry store with artifacts beside it."""
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    return MlflowStore(uri, uri, (mlflow_dir / "artifacts").as_uri())


DATABRICKS_STORE = MlflowStore("databricks", "databricks-uc", None)


def configure_mlflow(store: MlflowStore) -> MlflowClient:
    """Point this process's MLflow at ``store`` and return a client for it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    mlflow.set_tracking_uri(store.tracking_uri)
    mlflow.set_registry_uri(store.registry_uri)
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """Return the id of experiment ``name``, creating it (with local artifacts) if needed."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"{artifact_root}/{name.strip('/').replace('/', '_')}" if artifact_root else None
    return str(client.create_experiment(name, artifact_location=location))
