"""The model registry as this project uses it: one registered model per segment, aliases.

Names are ``<catalog>.<schema>.<prefix>_<segment>`` in Unity Catalog and the same string in
the local sqlite registry. Versions are never moved between stages (Unity Catalog has none);
their role is an alias:

- ``challenger``: passed validation, waiting for deploy;
- ``champion``: what scoring uses;
- ``previous_champion``: the champion before the newest promotion (rollback target).

A version a rollback replaced is tagged ``deployment_status=rolled_back`` (:data:`ROLLED_BACK`).
The ``deployment_status`` tag follows the aliases: a version that loses ``previous_champion``
to a newer promotion is ``retired`` (:data:`RETIRED`), one that loses ``challenger`` while
awaiting approval is ``superseded`` (:data:`SUPERSEDED`); see :func:`stale_status` and
:mod:`demand_forecasting.models.lifecycle` for tags older releases left behind.

Everything a version records about itself is a tag (see :data:`VERSION_TAGS`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import TypeGuard, TypeVar

from mlflow.entities.model_registry import ModelVersion
from mlflow.entities.model_registry.model_version_search import ModelVersionSearch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

#: Registered models are ``<catalog>.<schema>.<prefix>_<segment>``; the bundle variable
#: ``model_prefix`` and ``--model-prefix`` default to this.
DEFAULT_MODEL_PREFIX = "demand"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"

#: Tags every new version carries (set by the train task).
VERSION_TAGS = (
    "segment",
    "git_commit",
    "bundle_target",
    "training_table",
    "training_table_version",
    "data_hash",
    "features",
    "run_id",
    "recipe_hash",
    "artifact_hash",
    "trained_until",
    "training_identity",
)
#: Tags the validate and deploy tasks add.
VALIDATION_STATUS = "validation_status"
VALIDATION_REASONS = "validation_reasons"
DEPLOYMENT_STATUS = "deployment_status"
AWAITING_APPROVAL = "awaiting_approval"
#: Set by every promotion on its target just before ``champion`` moves to it: JSON of the
#: time, action, actor, job run, replaced version and reason, so that the audit row of a
#: promotion killed before writing it can be rebuilt with who and why
#: (:func:`demand_forecasting.models.audit.reconcile`).
PROMOTION_INTENT = "promotion_intent"
#: ``deployment_status`` of a version that awaited approval when a newer one took its
#: ``challenger`` alias (validation of a later month): it can no longer be approved.
SUPERSEDED = "superseded"
#: ``deployment_status`` of a version a rollback took the champion away from: validation
#: never makes it a challenger again (a person may restore it with ``rollback --to``).
#: It keeps this status when it later loses ``previous_champion``.
ROLLED_BACK = "rolled_back"
#: ``deployment_status`` of a former champion that lost ``previous_champion`` to a newer
#: promotion: no alias names it any more (``rollback --to`` can still restore it).
RETIRED = "retired"
#: The alias a ``deployment_status`` says its version holds, and the status the version
#: takes once it holds it no more (:func:`stale_status`).
_ALIAS_OF_STATUS = {
    CHAMPION: CHAMPION,
    PREVIOUS_CHAMPION: PREVIOUS_CHAMPION,
    AWAITING_APPROVAL: CHALLENGER,
}
_STATUS_WITHOUT_ALIAS = {
    CHAMPION: RETIRED,
    PREVIOUS_CHAMPION: RETIRED,
    AWAITING_APPROVAL: SUPERSEDED,
}
#: Registered-model tag: the version of the lifecycle-tag rules its versions were last
#: checked against (:mod:`demand_forecasting.models.lifecycle`); a model created by this
#: release starts with it. Raise :data:`LIFECYCLE_RULES` when the rules change, so that the
#: next deploy checks every segment's versions again.
LIFECYCLE_RULES_TAG = "deployment_status_rules"
LIFECYCLE_RULES = "1"

#: Unity Catalog's limits on the tags of a securable, model versions included (documented
#: as 20 tags of up to 255 characters at first, 50 tags with values of up to 1,000 since):
#: the project keeps to the older, tighter ones. A version carries at most 18 of its own
#: tags, and 19 while a promotion is in flight (:data:`PROMOTION_INTENT`).
MAX_VERSION_TAGS = 20
#: Longest tag value the project writes (free text is cut to it).
TAG_VALUE_MAX = 250

_MISSING = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")

#: Per-segment registry and tracking reads in flight at once (:func:`read_each_segment`). On
#: Databricks each read is a REST call (~0.1-0.2 s), so 500 segments read one after another
#: take minutes. Kept below MLflow's HTTP connection pool (``MLFLOW_HTTP_POOL_MAXSIZE``, 10),
#: so that no thread waits for a connection, and small against the workspace's API limits.
REGISTRY_READ_THREADS = 8

_Read = TypeVar("_Read")


def model_name(catalog: str, schema: str, prefix: str, segment: str) -> str:
    """The registered model name of a segment: ``<catalog>.<schema>.<prefix>_<segment>``."""
    return f"{catalog}.{schema}.{prefix}_{segment}"


def add_model_prefix_option(parser: argparse.ArgumentParser) -> None:
    """``--model-prefix`` (bundle variable ``model_prefix``), as every task that names the
    segment models takes it."""
    parser.add_argument(
        "--model-prefix",
        default=DEFAULT_MODEL_PREFIX,
        help="registered models are <catalog>.<schema>.<prefix>_<segment>",
    )


def segment_of(name: str, prefix: str) -> str:
    """The segment of a registered model name (inverse of :func:`model_name`).

    Raises:
        ValueError: ``name`` is not ``<catalog>.<schema>.<prefix>_<segment>``.
    """
    table = name.split(".")[-1]
    if not table.startswith(f"{prefix}_") or name.count(".") != 2:
        raise ValueError(
            f"registered model {name!r} is not named "
            f"'<catalog>.<schema>.{prefix}_<segment>' (model prefix {prefix!r})"
        )
    return table[len(prefix) + 1 :]


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of registered model ``name`` behind ``alias``, or None (no such model or
    alias); another registry error is raised."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in _MISSING:
            return None
        raise


@dataclass
class SegmentRegistry:
    """Registry operations for the segment models of one catalog and schema."""

    client: MlflowClient
    catalog: str
    schema: str
    prefix: str

    def name(self, segment: str) -> str:
        """The registered model name of ``segment``."""
        return model_name(self.catalog, self.schema, self.prefix, segment)

    def ensure_model(self, segment: str) -> str:
        """Create the segment's registered model if it does not exist; return its name."""
        name = self.name(segment)
        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in _MISSING:
                raise
            self.client.create_registered_model(
                name,
                tags={"segment": segment, LIFECYCLE_RULES_TAG: LIFECYCLE_RULES},
                description=f"Monthly demand forecaster of segment {segment} (XGBoost + "
                "Holt-Winters, direct multi-horizon). Aliases: champion, challenger, "
                "previous_champion.",
            )
        return name

    def model_tags(self, segment: str) -> dict[str, str] | None:
        """The tags of the segment's registered model, or None (no such model)."""
        try:
            return dict(self.client.get_registered_model(self.name(segment)).tags or {})
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return None
            raise

    def tag_model(self, segment: str, key: str, value: str) -> None:
        """Set a tag on the segment's registered model."""
        self.client.set_registered_model_tag(self.name(segment), key, value)

    def alias(self, segment: str, alias: str) -> ModelVersion | None:
        """The version behind ``alias``, or None (no such model or alias)."""
        return version_by_alias(self.client, self.name(segment), alias)

    def version(self, segment: str, version: str) -> ModelVersion:
        """One version of the segment's model.

        Raises:
            LookupError: the version does not exist.
        """
        try:
            return self.client.get_model_version(self.name(segment), str(version))
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                raise LookupError(
                    f"model {self.name(segment)!r} has no version {version}; "
                    "list them with the MLflow UI or search_model_versions"
                ) from exc
            raise

    def versions(self, segment: str) -> list[ModelVersion]:
        """Every version of the segment's model, newest first, each with its tags and aliases
        (empty without a model). See :meth:`iter_versions`."""
        return list(self.iter_versions(segment))

    def iter_versions(self, segment: str) -> Iterator[ModelVersion]:
        """The segment's versions, newest first, each with its tags and aliases.

        Unity Catalog's ``search_model_versions`` returns versions *without* tags or aliases
        (MLflow's ``ModelVersionSearch``, whose ``tags`` is a method that raises): each such
        result is read again with ``get_model_version``, lazily, so that a caller that stops
        at the first match reads no more than it needs. The local sqlite registry returns
        whole versions, which are yielded as they are.
        """
        try:
            found = self.client.search_model_versions(f"name = '{self.name(segment)}'")
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return
            raise
        for hit in sorted(found, key=lambda v: int(v.version), reverse=True):
            if isinstance(hit, ModelVersionSearch):
                yield self.client.get_model_version(hit.name, str(hit.version))
            else:
                yield hit

    def find_by_tag(self, segment: str, key: str, value: str) -> ModelVersion | None:
        """The newest version whose tag ``key`` equals ``value`` (Unity Catalog cannot
        filter on tags server-side, so this filters the segment's versions here)."""
        for version in self.iter_versions(segment):
            if (version.tags or {}).get(key) == value:
                return version
        return None

    def set_alias(self, segment: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (an alias names one version at a time)."""
        self.client.set_registered_model_alias(self.name(segment), alias, str(version))

    def delete_alias(self, segment: str, alias: str) -> None:
        """Remove ``alias`` if it exists."""
        if self.alias(segment, alias) is not None:
            self.client.delete_registered_model_alias(self.name(segment), alias)

    def tag(self, segment: str, version: str, tags: dict[str, str]) -> None:
        """Set tags on a version."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name(segment), str(version), key, value)

    def untag(self, segment: str, version: str, key: str) -> None:
        """Remove tag ``key`` from a version."""
        self.client.delete_model_version_tag(self.name(segment), str(version), key)

    def describe(self, segment: str, version: str, description: str) -> None:
        """Replace a version's description."""
        self.client.update_model_version(self.name(segment), str(version), description=description)

    def segments_with(self, segments: Iterable[str], alias: str) -> dict[str, ModelVersion]:
        """``{segment: version}`` for those of ``segments`` whose model has ``alias`` (read
        :data:`REGISTRY_READ_THREADS` at a time, in the order of ``segments``)."""
        return {
            segment: version
            for segment, version in read_each_segment(
                segments, lambda segment: self.alias(segment, alias)
            ).items()
            if version is not None
        }

    def awaiting_approval(self, segments: Iterable[str]) -> dict[str, str]:
        """``{segment: version}`` of those of ``segments`` whose ``challenger`` is tagged
        awaiting approval (deploy under ``require_approval``)."""
        return {
            segment: str(version.version)
            for segment, version in self.awaiting_approval_versions(segments).items()
        }

    def awaiting_approval_versions(self, segments: Iterable[str]) -> dict[str, ModelVersion]:
        """As :meth:`awaiting_approval`, each with the whole version (its tags say, e.g.,
        since when it waits: ``trained_until``)."""
        return {
            segment: version
            for segment, version in self.segments_with(segments, CHALLENGER).items()
            if awaits_approval(version)
        }


class SegmentReadError(RuntimeError):
    """A per-segment read of :func:`read_each_segment` failed; the error it met is the cause.

    Attributes:
        segment: the segment whose read failed.
    """

    def __init__(self, segment: str, error: Exception) -> None:
        super().__init__(f"segment {segment}: {type(error).__name__}: {error}")
        self.segment = segment


def read_each_segment(
    segments: Iterable[str],
    read: Callable[[str], _Read],
    threads: int | None = None,
) -> dict[str, _Read]:
    """``{segment: read(segment)}`` in the order of ``segments``, up to ``threads`` at once.

    For registry and tracking *reads* only, and downloads of registered artifacts into a
    folder of each segment's own (the score task's model cache,
    :func:`demand_forecasting.scoring.champion_models.champions`). Writes (aliases, tags,
    audit rows) stay one after another in the caller, in the order their crash safety relies
    on. One ``MlflowClient``
    serves all threads: over REST (Databricks, an ``mlflow server``) it shares one HTTP
    session with a pool of connections; over the local sqlite store each call opens its own
    SQLAlchemy session from the engine's connection pool (``check_same_thread`` off), and
    reads from threads return what reads one after another do (the tests compare them; see
    ``benchmarks/README.md``, *Registry reads*, for the REST figures).

    Args:
        segments: the segments, in the order of the result.
        read: the reads of one segment (no writes).
        threads: reads in flight at once (default :data:`REGISTRY_READ_THREADS`, as it is at
            the call); 1 reads one after another in this thread.

    Raises:
        SegmentReadError: a read failed; of several, the first in the order of
            ``segments``. Reads not started yet are cancelled.
    """
    ordered = list(segments)
    threads = REGISTRY_READ_THREADS if threads is None else threads

    def named(segment: str) -> _Read:
        try:
            return read(segment)
        except Exception as exc:
            raise SegmentReadError(segment, exc) from exc

    if threads <= 1 or len(ordered) <= 1:
        return {segment: named(segment) for segment in ordered}
    with ThreadPoolExecutor(
        max_workers=min(threads, len(ordered)), thread_name_prefix="registry-read"
    ) as pool:
        futures = {segment: pool.submit(named, segment) for segment in ordered}
        try:
            return {segment: future.result() for segment, future in futures.items()}
        except BaseException:
            for future in futures.values():
                future.cancel()
            raise


def awaits_approval(version: ModelVersion | None) -> TypeGuard[ModelVersion]:
    """Whether ``version`` is tagged ``deployment_status=awaiting_approval`` (deploy under
    ``require_approval`` marked it; the approve job promotes it). Callers check that it still
    holds ``challenger`` where that matters: a version that lost it is ``superseded``."""
    return version is not None and (version.tags or {}).get(DEPLOYMENT_STATUS) == AWAITING_APPROVAL


def trained_until(version: ModelVersion) -> date | None:
    """The newest month of ``version``'s training data (its ``trained_until`` tag), or None
    for a version without the tag (not made by the train task)."""
    until = (version.tags or {}).get("trained_until")
    return date.fromisoformat(until[:10]) if until else None


def stale_status(version: ModelVersion) -> str | None:
    """The ``deployment_status`` that ``version`` should carry instead of its own, or None
    (its status names no alias, or one it holds). A version whose status says it holds an
    alias it no longer holds is ``retired`` (it was champion or previous champion) or
    ``superseded`` (it awaited approval as the challenger)."""
    status = (version.tags or {}).get(DEPLOYMENT_STATUS) or ""
    alias = _ALIAS_OF_STATUS.get(status)
    if alias is None or alias in (version.aliases or []):
        return None
    return _STATUS_WITHOUT_ALIAS[status]


def finish_promotion(
    registry: SegmentRegistry,
    segment: str,
    version: str,
    replaced: str | None,
    replaced_status: str = PREVIOUS_CHAMPION,
) -> None:
    """What a promotion does after moving ``champion`` to ``version``: the version that held
    ``previous_champion`` is tagged ``deployment_status=retired`` (unless ``rolled_back``),
    ``replaced`` (the champion before; None: there was none) becomes ``previous_champion``
    and is tagged ``deployment_status=<replaced_status>``, ``version`` is tagged
    ``deployment_status=champion`` and loses ``challenger``.

    Every step sets a state, so that doing them again is harmless: the reconciliation of a
    promotion killed after moving ``champion`` calls this to finish it. The old holder of
    ``previous_champion`` is retired *before* the alias leaves it: killed in between, the
    rerun reads the same holder and finishes; moved first, the holder would be forgotten
    with a stale ``previous_champion`` tag.
    """
    if replaced is not None and replaced != version:
        _retire_previous_champion(registry, segment, keep=(version, replaced))
        registry.set_alias(segment, PREVIOUS_CHAMPION, replaced)
        registry.tag(segment, replaced, {DEPLOYMENT_STATUS: replaced_status})
    registry.tag(segment, version, {DEPLOYMENT_STATUS: CHAMPION})
    challenger = registry.alias(segment, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        registry.delete_alias(segment, CHALLENGER)


def _retire_previous_champion(
    registry: SegmentRegistry, segment: str, keep: tuple[str, str]
) -> None:
    """Tag the holder of ``previous_champion`` ``retired`` (the alias is about to leave it),
    unless it is one of ``keep`` (it is being promoted, or already the replaced champion) or
    a status that names no alias (``rolled_back`` stays: validation skips such versions)."""
    holder = registry.alias(segment, PREVIOUS_CHAMPION)
    if holder is None or str(holder.version) in keep:
        return
    if (holder.tags or {}).get(DEPLOYMENT_STATUS) in (CHAMPION, PREVIOUS_CHAMPION):
        registry.tag(segment, str(holder.version), {DEPLOYMENT_STATUS: RETIRED})
