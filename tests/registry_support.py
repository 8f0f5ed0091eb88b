"""Helpers for the registry tests: the real MLflow client, counting its reads in flight.
Importable from any test: pytest puts ``tests/`` (the folder of the root conftest) on the
import path."""

from __future__ import annotations

import threading
import time
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient


class OverlapCountingClient(MlflowClient):
    """The real client; its per-segment reads (alias, version search, run) record how many
    run at once in ``peak``. Each takes 20 ms longer, so that reads that run together
    overlap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak = 0

    def _counted(self, read: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            time.sleep(0.02)
            return read(*args, **kwargs)
        finally:
            with self._lock:
                self._in_flight -= 1

    def get_model_version_by_alias(self, *args: Any, **kwargs: Any) -> ModelVersion:
        return self._counted(super().get_model_version_by_alias, *args, **kwargs)

    def search_model_versions(self, *args: Any, **kwargs: Any) -> Any:
        return self._counted(super().search_model_versions, *args, **kwargs)

    def get_run(self, *args: Any, **kwargs: Any) -> Any:
        return self._counted(super().get_run, *args, **kwargs)
