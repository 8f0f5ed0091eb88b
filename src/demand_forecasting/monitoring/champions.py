"""Each segment's ``champion`` model version and the training data it records.

The train task tags every version with the feature table and the Delta version it was trained
on (:data:`demand_forecasting.models.registry.VERSION_TAGS`). Drift reads those tags to rebuild
the champion's reference window by time travel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from demand_forecasting.models.fallback import is_fallback, newest_trained_version
from demand_forecasting.models.registry import (
    CHAMPION,
    VALIDATION_STATUS,
    SegmentRegistry,
    read_each_segment,
    trained_until,
)

log = logging.getLogger(__name__)

TRAINING_TABLE_TAG = "training_table"
TRAINING_VERSION_TAG = "training_table_version"


@dataclass(frozen=True)
class Champion:
    """A segment's champion model version and its training data.

    Attributes:
        training_table: full name of the table it was trained on (None: not tagged).
        training_version: that table's Delta version (None: not tagged).
        fallback: the champion is a seasonal-naive fallback (the segment's candidate was
            refused and it had no champion; a real model is retried).
        horizon: months ahead it forecasts (its training run's ``horizon`` param; None: the
            version has no run with one).
    """

    segment: str
    model_name: str
    version: str
    training_table: str | None
    training_version: int | None
    fallback: bool = False
    horizon: int | None = None


def find_champions(
    client: MlflowClient, catalog: str, schema: str, prefix: str, segments: Iterable[str]
) -> dict[str, Champion]:
    """``{segment: Champion}`` for those of ``segments`` whose model has a champion (the
    segments' registry and run reads run
    :data:`~demand_forecasting.models.registry.REGISTRY_READ_THREADS` at a time)."""
    registry = SegmentRegistry(client, catalog, schema, prefix)
    wanted = sorted(segments)

    def champion_of(segment: str) -> Champion | None:
        version = registry.alias(segment, CHAMPION)
        if version is None:
            return None
        tags = dict(version.tags or {})
        training_version = tags.get(TRAINING_VERSION_TAG)
        return Champion(
            segment=segment,
            model_name=registry.name(segment),
            version=str(version.version),
            training_table=tags.get(TRAINING_TABLE_TAG) or None,
            training_version=int(training_version) if training_version else None,
            fallback=is_fallback(version),
            horizon=trained_horizon(client, version.run_id),
        )

    found = {
        segment: champion
        for segment, champion in read_each_segment(wanted, champion_of).items()
        if champion is not None
    }
    log.info("%d of %d segments have a %s", len(found), len(wanted), CHAMPION)
    return found


@dataclass(frozen=True)
class Refusal:
    """A segment's newest trained version, which validation refused."""

    version: str
    trained_until: date

    def __str__(self) -> str:
        return f"v{self.version} refused, trained until {self.trained_until:%Y-%m}"


def trained_horizon(client: MlflowClient, run_id: str | None) -> int | None:
    """The ``horizon`` param of a version's training run (None: no run, or no such param)."""
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.params.get("horizon")
    except MlflowException:
        return None
    return int(value) if value and value.isdigit() else None


def recently_refused(
    client: MlflowClient,
    catalog: str,
    schema: str,
    prefix: str,
    segments: Iterable[str],
    run_month: date,
    months: int,
) -> dict[str, Refusal]:
    """Of ``segments`` (those without a champion of their own), the ones whose newest trained
    version (fallbacks aside) validation refused and was trained on data less than ``months``
    months older than ``run_month``.

    Returns:
        ``{segment: Refusal}`` (its text: ``vN refused, trained until YYYY-MM``); empty when
        ``months`` is 0. The segments' versions are read
        :data:`~demand_forecasting.models.registry.REGISTRY_READ_THREADS` at a time.
    """
    if months <= 0:
        return {}
    registry = SegmentRegistry(client, catalog, schema, prefix)

    def refusal_of(segment: str) -> Refusal | None:
        newest = newest_trained_version(registry, segment)
        if newest is None:
            return None
        until = trained_until(newest)
        if (newest.tags or {}).get(VALIDATION_STATUS) != "refused" or until is None:
            return None
        age = (run_month.year - until.year) * 12 + run_month.month - until.month
        return Refusal(str(newest.version), until) if age < months else None

    return {
        segment: refusal
        for segment, refusal in read_each_segment(sorted(segments), refusal_of).items()
        if refusal is not None
    }
