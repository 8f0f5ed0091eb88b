"""The seasonal-naive fallback: a governed champion for a segment the gate left without one.

The gate refuses a candidate that does not beat seasonal naive on its backtest. A segment
that has a champion keeps it; a segment that has none would get no forecast at all. For
those, ``validate_models`` registers a seasonal-naive version of the segment's model (recipe
``method = seasonal_naive``: each month's value a year before, nothing fitted) and gives it
the ``challenger`` alias, so that ``deploy`` promotes it like any model: an evaluation row, an
audit row, lineage to the same Delta version as the refused candidate. It is the forecast the
gate itself found better. The drift check then retries a real model for the segment every
``refused_retry_months`` months; the next candidate must beat seasonal naive as always.

A segment whose ``challenger`` awaits approval (prod before its first approval) gets no
fallback: it has a model, waiting for a person, and a fallback would await approval as well
while superseding the version under review
(:func:`demand_forecasting.models.validate.withheld_fallback_reason`).

A fallback version is tagged ``fallback = seasonal_naive`` and ``fallback_for = <refused
version>``; a rerun of the month finds it by that tag instead of registering another.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from mlflow.entities import Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from demand_forecasting.models.forecaster import STATE_FILE, SegmentForecaster
from demand_forecasting.models.pyfunc import log_forecaster
from demand_forecasting.models.recipe import SEASONAL_NAIVE, Recipe
from demand_forecasting.models.registry import VERSION_TAGS, SegmentRegistry
from demand_forecasting.models.tracking import (
    DATASET_TAG,
    artifact_hash,
    logged_model_id,
    segment_run_name,
)

if TYPE_CHECKING:
    from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

FALLBACK_TAG = "fallback"
FALLBACK_FOR_TAG = "fallback_for"


def naive_recipe(horizon: int) -> Recipe:
    """The seasonal-naive recipe for ``horizon`` months ahead."""
    return Recipe(horizon=horizon, method=SEASONAL_NAIVE)


def is_fallback(version: ModelVersion | None) -> bool:
    """True when ``version`` is a seasonal-naive fallback."""
    return version is not None and (version.tags or {}).get(FALLBACK_TAG) == SEASONAL_NAIVE


def trained_versions(registry: SegmentRegistry, segment: str) -> list[ModelVersion]:
    """The segment's versions the train task made (fallbacks left out), newest first."""
    return [v for v in registry.versions(segment) if not is_fallback(v)]


def newest_trained_version(registry: SegmentRegistry, segment: str) -> ModelVersion | None:
    """The newest of :func:`trained_versions` (None: none). On Unity Catalog, where each
    version's tags take a call of their own, this reads versions only down to that one."""
    return next((v for v in registry.iter_versions(segment) if not is_fallback(v)), None)


def register_fallback(
    ctx: RunContext,
    registry: SegmentRegistry,
    segment: str,
    refused: ModelVersion,
    horizon: int,
    example: pd.DataFrame,
    reason: str,
) -> ModelVersion:
    """The segment's seasonal-naive version standing in for the ``refused`` candidate.

    Logged as a child run of the refused candidate's training run (same experiment, same
    parent, same dataset inputs) and registered with the candidate's lineage tags; an
    existing fallback for the same refused version is returned as it is (rerun).

    Args:
        ctx: run context.
        registry: the segment models.
        segment: the segment.
        refused: the candidate version validation refused.
        horizon: months ahead.
        example: the model's input example (a series' recent history).
        reason: why the fallback exists (version description and tag).
    """
    existing = registry.find_by_tag(segment, FALLBACK_FOR_TAG, str(refused.version))
    if existing is not None:
        log.info("segment %s: fallback v%s already stands in", segment, existing.version)
        return existing
    client = ctx.mlflow
    source = client.get_run(str(refused.run_id))
    tags = dict(refused.tags or {})
    recipe = naive_recipe(horizon)
    forecaster = SegmentForecaster(
        recipe, None, {}, trained_until=pd.Timestamp(tags.get("trained_until") or "1970-01-01")
    )
    dataset = source.data.tags.get(DATASET_TAG)
    run_tags = {
        "segment": segment,
        **({DATASET_TAG: dataset} if dataset else {}),
        "kind": "seasonal_naive_fallback",
        "bundle_target": ctx.target,
        "git_commit": tags.get("git_commit", ""),
    }
    parent = source.data.tags.get(MLFLOW_PARENT_RUN_ID)
    if parent:
        run_tags[MLFLOW_PARENT_RUN_ID] = parent
    # The refused run's dataset (none on runs trained before runs carried it).
    name = segment_run_name(dataset, segment) if dataset else segment
    run = client.create_run(
        source.info.experiment_id, run_name=f"{name} seasonal-naive fallback", tags=run_tags
    )
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        params=[
            Param("recipe", recipe.to_json()),
            Param("horizon", str(horizon)),
            Param("training_table", tags.get("training_table", "")),
            Param("training_table_version", tags.get("training_table_version", "")),
            Param("trained_until", tags.get("trained_until", "")),
            Param(FALLBACK_FOR_TAG, str(refused.version)),
        ],
    )
    if source.inputs is not None and source.inputs.dataset_inputs:
        client.log_inputs(run_id, datasets=list(source.inputs.dataset_inputs))
    with tempfile.TemporaryDirectory(prefix="fallback-") as scratch:
        folder = Path(scratch)
        forecaster.to_files(folder)
        state = (folder / STATE_FILE).read_text()
        model_uri = log_forecaster(folder, example, run=(source.info.experiment_id, run_id))
    version_tags = {key: tags[key] for key in VERSION_TAGS if key in tags}
    version_tags.update(
        {
            "segment": segment,
            "run_id": run_id,
            "features": "",
            "recipe_hash": recipe.fingerprint(),
            "artifact_hash": artifact_hash(None, state),
            "training_identity": f"fallback-for-v{refused.version}",
            FALLBACK_TAG: SEASONAL_NAIVE,
            FALLBACK_FOR_TAG: str(refused.version),
        }
    )
    # One registry call, as the train task registers its versions (the registered model
    # exists: the refused candidate is one of its versions).
    version = client.create_model_version(
        registry.name(segment),
        source=model_uri,
        run_id=run_id,
        tags=version_tags,
        description=f"Seasonal-naive fallback for {segment}: {reason}. Forecasts each month "
        "with its value a year before until a candidate beats it.",
        model_id=logged_model_id(model_uri),
    )
    client.set_terminated(run_id)
    log.info("segment %s: seasonal-naive fallback registered as v%s", segment, version.version)
    return registry.version(segment, str(version.version))
