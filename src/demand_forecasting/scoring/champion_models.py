"""Champion models where Spark's Python workers can load them.

The driver resolves each segment's ``champion`` alias to a fixed version, so that every
group of one scoring run uses the same version even if a deploy moves the alias meanwhile,
and downloads its artifacts once into a model cache in the checkpoints volume:
``<checkpoints volume>/model_cache/<model>/<version>``. A version never changes, so later
runs reuse the folder. The volume is a local folder of the state directory on a laptop and a
Unity Catalog volume on Databricks, which the executors of classic and serverless compute
read as files, so workers load the model from the same path everywhere.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow

from demand_forecasting import names
from demand_forecasting.models.fallback import is_fallback
from demand_forecasting.models.registry import CHAMPION, SegmentRegistry
from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

MODEL_CACHE = "model_cache"
#: Written last: a folder without it is an interrupted download and is fetched again.
COMPLETE_MARKER = "_COMPLETE"


@dataclass(frozen=True)
class ChampionModel:
    """A segment's champion version and the folder workers load it from."""

    segment: str
    model_name: str
    version: str
    folder: str
    #: The seasonal-naive fallback (the segment's candidate was refused, it had no champion).
    fallback: bool = False

    @property
    def model_id(self) -> str:
        """``<model name>/<version>``: the model identity of a forecast row."""
        return f"{self.model_name}/{self.version}"


def champions(ctx: RunContext, segments: list[str], prefix: str) -> dict[str, ChampionModel]:
    """The champion of each of ``segments`` that has one, in the model cache."""
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, prefix)
    found = {}
    for segment, version in sorted(registry.segments_with(segments, CHAMPION).items()):
        name = registry.name(segment)
        folder = Path(
            ctx.volume_path(names.CHECKPOINT_VOLUME, MODEL_CACHE, name, str(version.version))
        )
        cache(f"models:/{name}/{version.version}", folder)
        found[segment] = ChampionModel(
            segment, name, str(version.version), str(folder), fallback=is_fallback(version)
        )
    return found


def cache(model_uri: str, folder: Path) -> bool:
    """Download ``model_uri`` into ``folder`` unless a complete copy is there; True if fetched."""
    if (folder / COMPLETE_MARKER).is_file():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder))
    if not (folder / "MLmodel").is_file():
        raise RuntimeError(
            f"{model_uri} downloaded to {folder} without an MLmodel file: "
            "not an MLflow model; check the registered version's source"
        )
    (folder / COMPLETE_MARKER).write_text(model_uri)
    log.info("cached %s in %s", model_uri, folder)
    return True
