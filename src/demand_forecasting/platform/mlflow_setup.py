"""MLflow tracking and model registry: Databricks + Unity Catalog, or a local sqlite store."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from sqlalchemy import event
from sqlalchemy.engine import Engine


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
    # A batch job's log is no terminal: MLflow's per-copy progress bars (one per logged
    # model, as the pyfunc's artifacts are copied in) are noise there.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if store.tracking_uri.startswith("sqlite:"):
        use_write_ahead_log()
    remember_installed_versions()
    mlflow.set_tracking_uri(store.tracking_uri)
    mlflow.set_registry_uri(store.registry_uri)
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)


def remember_installed_versions() -> None:
    """Look each installed package's version up once per process, not at every model saved.

    Saving a model, MLflow checks its pinned requirements against the installed packages,
    reading every package's metadata from disk: 15-18 ms of a logged model's ~0.18 s, 0.2-0.4
    ms cached (benchmarks/README.md, Training speed, Session 7). Packages do not change under
    a running job. This wraps MLflow's private lookup (pinned MLflow version; left alone if it
    is gone) in a cache; a package that is not installed is not cached, so it is looked up
    again.
    """
    from mlflow.utils import requirements_utils

    lookup = getattr(requirements_utils, "_get_installed_version", None)
    if lookup is None or hasattr(lookup, "cache_info"):
        return
    requirements_utils._get_installed_version = functools.lru_cache(maxsize=None)(lookup)


def warm_up_model_logging() -> threading.Thread:
    """Build MLflow's map of installed packages on a background thread; return the thread.

    The first model a process saves makes MLflow map every installed module to its
    distribution (``importlib_metadata.packages_distributions``, ~0.8 s here, cached for the
    process), to check the model's pinned requirements. The train task starts this before
    its Spark fit, while the driver only waits for results, and joins it before logging the
    first model, so that this one-off cost is not paid on the logging path. A failure here
    is left for the logging itself to meet (it is only a warm-up).
    """

    def build() -> None:
        try:
            from mlflow.utils import requirements_utils

            requirements_utils._init_modules_to_packages_map()
        except Exception:  # the real call meets it again and reports it, with context
            return

    thread = threading.Thread(target=build, name="mlflow-warm-up", daemon=True)
    thread.start()
    return thread


def use_write_ahead_log() -> None:
    """Open this process's sqlite connections in WAL mode with ``synchronous = NORMAL``.

    MLflow commits a sqlite transaction for nearly every call (~20 per logged and
    registered model); in sqlite's default rollback-journal mode each commit waits for
    fsync. With a write-ahead log a commit is an append, synced only at checkpoints:
    logging a model took ~2.5x less time (``benchmarks/training_speed.py``). A crash of the
    process loses nothing committed; a power cut can lose the last commits, which a rerun of
    the month redoes (every task is idempotent). Installed once, for sqlite connections only.
    """
    if event.contains(Engine, "connect", _sqlite_wal):
        return
    event.listen(Engine, "connect", _sqlite_wal)


def _sqlite_wal(connection: Any, _record: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """Return the id of experiment ``name``, creating it (with local artifacts) if needed."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"{artifact_root}/{name.strip('/').replace('/', '_')}" if artifact_root else None
    return str(client.create_experiment(name, artifact_location=location))
