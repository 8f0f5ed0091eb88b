"""Helpers for the registry tests: the real MLflow client, counting its reads in flight.
Importable from any test: pytest puts ``tests/`` (the folder of the root conftest) on the
import path."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from demand_forecasting.models import validate
from demand_forecasting.models.registry import (
    VALIDATION_REASONS,
    VALIDATION_STATUS,
    SegmentRegistry,
)
from demand_forecasting.platform.context import RunContext


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


def register_validated(
    ctx: RunContext, segment: str, tmp_path: Path, *, passed: bool = True, prefix: str = "demand"
) -> str:
    """A new version of ``segment``'s model, registered without training (for tasks that move
    aliases and never load a model) and tagged as validation tags it; a passing one becomes
    the challenger as validation makes it. Returns the version."""
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, prefix)
    name = registry.ensure_model(segment)
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    version = str(registry.client.create_model_version(name, source=str(source)).version)
    reason = "MASE 0.9 beats seasonal naive 1.1" if passed else "MASE 1.2 does not beat 1.1"
    registry.tag(
        segment,
        version,
        {VALIDATION_STATUS: "passed" if passed else "refused", VALIDATION_REASONS: reason},
    )
    if passed:
        validate.make_challenger(registry, segment, version)
    return version
