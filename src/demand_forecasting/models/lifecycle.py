"""Retag the versions whose ``deployment_status`` an older release left behind its aliases.

The tag is what the registry UI shows of a version's place. Promotions and validation keep
it in step as they move aliases (:func:`~demand_forecasting.models.registry.finish_promotion`
retires the version that loses ``previous_champion``,
:func:`~demand_forecasting.models.validate.make_challenger` supersedes the one that loses
``challenger`` while awaiting approval). Releases before those rules left versions tagged
``previous_champion`` (several per segment) or ``awaiting_approval`` without the alias.

:func:`retag_stale_versions` mends them, run by deploy for the segments it acts on. It reads
each segment's versions once (on Unity Catalog: one search and one call per version, since a
search returns no tags; locally one query), retags each version
:func:`~demand_forecasting.models.registry.stale_status` names, and then records
:data:`~demand_forecasting.models.registry.LIFECYCLE_RULES_TAG` on the registered model. Later
deploys read only that tag (one registered-model read per segment, several at a time), so the
versions are not scanned every month; models created by this release carry it from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from demand_forecasting.models.registry import (
    DEPLOYMENT_STATUS,
    LIFECYCLE_RULES,
    LIFECYCLE_RULES_TAG,
    SegmentRegistry,
    read_each_segment,
    stale_status,
)

log = logging.getLogger(__name__)


def unchecked(registry: SegmentRegistry, segment: str) -> bool:
    """Whether the segment's registered model lacks the current rules' record (a missing
    model has nothing to check)."""
    tags = registry.model_tags(segment)
    return tags is not None and tags.get(LIFECYCLE_RULES_TAG) != LIFECYCLE_RULES


def retag_segment(registry: SegmentRegistry, segment: str) -> list[str]:
    """Retag the segment's stale versions and record the pass on its registered model.

    Each stale version is read again just before it is tagged: a promotion running at the
    same time (an approval during the monthly deploy) may have moved an alias since the
    search. Tagging sets a state, so a pass killed midway is simply done again (the record
    is written last).

    Returns:
        ``v<version> <old status> -> <new status>`` for each version retagged, oldest first.
    """
    changes = []
    for found in sorted(registry.iter_versions(segment), key=lambda v: int(v.version)):
        if stale_status(found) is None:
            continue
        version = registry.version(segment, str(found.version))
        status = stale_status(version)
        if status is None:
            continue
        registry.tag(segment, str(version.version), {DEPLOYMENT_STATUS: status})
        changes.append(f"v{version.version} {(version.tags or {})[DEPLOYMENT_STATUS]} -> {status}")
    registry.tag_model(segment, LIFECYCLE_RULES_TAG, LIFECYCLE_RULES)
    return changes


def retag_stale_versions(
    registry: SegmentRegistry, segments: Sequence[str]
) -> dict[str, list[str]]:
    """Run :func:`retag_segment` on those of ``segments`` not yet checked; ``{segment:
    changes}`` of the segments where a version was retagged."""
    pending = [
        s
        for s, todo in read_each_segment(segments, lambda s: unchecked(registry, s)).items()
        if todo
    ]
    retagged = {}
    for segment in pending:
        changes = retag_segment(registry, segment)
        if changes:
            retagged[segment] = changes
            log.info(
                "segment %s: %s retagged to follow the aliases (tags an older release left): %s",
                segment,
                DEPLOYMENT_STATUS,
                ", ".join(changes),
            )
    if pending:
        log.info(
            "lifecycle tags: %d segment model(s) checked for the first time, %d had stale "
            "versions; later deploys skip them",
            len(pending),
            len(retagged),
        )
    return retagged
