"""The deployment audit trail: one Delta row per promotion, rollback, approval request.

Who (actor), what (segment, model, from version, to version, artifact hash), when, why
(reason), and from which training run. Append-only; nothing in this project updates it.

Moving the ``champion`` alias and appending its row are two writes to two systems: a process
killed between them (SIGKILL, node loss, driver OOM) leaves a champion the trail does not
know. :func:`reconcile` closes such a gap. It runs before every governed change (deploy,
approve, rollback: the reconstructed row must precede the new one, whose ``from_version``
would otherwise hide the gap) and in ``score`` for every segment (which loads every champion
anyway): for each model whose registry champion is not the ``to_version`` of its newest
champion-changing row, it appends a :data:`RECONCILED` row. Who, why and which job run
come from the version's :data:`~demand_forecasting.models.registry.PROMOTION_INTENT` tag,
which :func:`~demand_forecasting.models.deploy.promote` sets just before it moves the alias,
when that tag matches the gap; otherwise the row says they are unknown. A matching intent
also says what the killed promotion left undone after moving ``champion``, which is done
first: the version it replaced becomes ``previous_champion`` (tagged
``deployment_status=rolled_back`` when the intent is a rollback's).

A second reconciliation finds the gap closed and writes nothing. Two reconciling the same gap
at once write its row once: the row's ``audit_id`` is derived from the gap, and it is MERGEd
on that id (see :func:`write_reconciled`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.models.registry import (
    DEPLOYMENT_STATUS,
    PREVIOUS_CHAMPION,
    PROMOTION_INTENT,
    ROLLED_BACK,
    TAG_VALUE_MAX,
    SegmentRegistry,
    finish_promotion,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame

log = logging.getLogger(__name__)

PROMOTE, ROLLBACK, AWAITING_APPROVAL, APPROVE = (
    "promote",
    "rollback",
    "awaiting_approval",
    "approve",
)
#: A row written after the fact for a champion change whose own row was lost.
RECONCILED = "reconciled"
#: The actions whose ``to_version`` became the champion (``awaiting_approval`` did not).
CHAMPION_ACTIONS = (PROMOTE, ROLLBACK, APPROVE, RECONCILED)
#: ``actor`` of a reconstructed row when the change's own actor cannot be told.
UNKNOWN_ACTOR = "unknown"
#: Namespace of the ``audit_id`` of a reconciled row (a UUID derived from the gap it closes).
_RECONCILED_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "demand-forecasting/model_audit/reconciled")
#: Attempts to commit reconciled rows when concurrent commits to the audit table conflict.
_COMMIT_ATTEMPTS = 3

AUDIT_SCHEMA = (
    "audit_id string, at timestamp, segment string, model_name string, action string, "
    "from_version string, to_version string, run_id string, actor string, reason string, "
    "model_artifact_hash string, target string, job_run_id string"
)


@dataclass(frozen=True)
class AuditEvent:
    """One governed change of a segment's champion (or a request for one)."""

    segment: str
    model_name: str
    action: str
    from_version: str | None
    to_version: str
    run_id: str | None
    actor: str
    reason: str
    model_artifact_hash: str | None
    target: str
    job_run_id: str | None = None
    #: None: a new random id when written. A reconciled row's is derived from its gap
    #: (:func:`reconciliation_id`), so that a second writer of the same row inserts nothing.
    audit_id: str | None = None


def current_actor(ctx: RunContext) -> str:
    """The identity doing the change: Spark's ``current_user()`` (the job's run-as identity
    on Databricks, the OS user locally)."""
    row = ctx.spark.sql("SELECT current_user() AS actor").first()
    return str(row["actor"]) if row is not None else "unknown"


def write_audit(ctx: RunContext, events: list[AuditEvent]) -> None:
    """Append ``events`` to the audit table (created on first use)."""
    if not events:
        return
    ctx.tables.write(_audit_frame(ctx, events), ctx.table(names.AUDIT), mode="append")


def write_reconciled(ctx: RunContext, events: list[AuditEvent]) -> int:
    """Insert the reconciled rows whose ``audit_id`` the audit table lacks; the number inserted.

    Each row's ``audit_id`` is derived from its gap (:func:`reconciliation_id`), so the MERGE
    on it inserts nothing for a gap that another job closed after this one read the trail.
    Two MERGEs committing at once conflict in Delta (each read the rows the other adds):
    the loser, run again, finds the winner's row. Locally the first write creates the table;
    a concurrent creation conflicts the same way.

    Raises:
        delta.exceptions.ConcurrentAppendException (or another Delta commit conflict): the
            audit table kept changing under :data:`_COMMIT_ATTEMPTS` attempts; rerun the job.
    """
    if not events:
        return 0
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentDeleteReadException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    conflicts = (
        ConcurrentAppendException,
        ConcurrentDeleteReadException,
        MetadataChangedException,
        ProtocolChangedException,
    )
    frame = _audit_frame(ctx, events)
    for attempt in range(1, _COMMIT_ATTEMPTS):
        try:
            return _insert_new(ctx, frame, len(events))
        except conflicts as exc:
            log.info(
                "audit reconciliation: a concurrent commit to %s (attempt %d): %s; reading "
                "it again",
                ctx.table(names.AUDIT),
                attempt,
                str(exc).splitlines()[0],
            )
    return _insert_new(ctx, frame, len(events))


def _insert_new(ctx: RunContext, frame: DataFrame, count: int) -> int:
    """MERGE ``frame``'s rows into the audit table unless their ``audit_id`` is there."""
    table = ctx.table(names.AUDIT)
    if not ctx.tables.exists(table):
        ctx.tables.write(frame, table, mode="append")
        return count
    metrics = (
        ctx.tables.delta_table(table)
        .alias("t")
        .merge(frame.alias("s"), "t.audit_id = s.audit_id")
        .whenNotMatchedInsertAll()
        .execute()
        .first()
    )
    inserted = int(metrics["num_inserted_rows"]) if metrics is not None else count
    if inserted < count:
        log.warning(
            "audit reconciliation: %d of %d reconciled row(s) were already in %s (written by "
            "a concurrent reconciliation of the same gap); not written again",
            count - inserted,
            count,
            table,
        )
    return inserted


def _audit_frame(ctx: RunContext, events: list[AuditEvent]) -> DataFrame:
    """The audit rows of ``events``, stamped now; a new random ``audit_id`` where none is set."""
    # An aware timestamp through Arrow: the instant is kept whatever the session's time zone
    # (a naive one would be read as wall time in it).
    at: datetime = ctx.clock()
    rows = [{**asdict(e), "audit_id": e.audit_id or str(uuid.uuid4()), "at": at} for e in events]
    return rows_frame(ctx.spark, pd.DataFrame(rows), AUDIT_SCHEMA)


def clear_intents(registry: SegmentRegistry, events: list[AuditEvent]) -> None:
    """Remove the :data:`PROMOTION_INTENT` tag of each promotion now audited (best effort).

    The tag is only needed while a promotion has no audit row; removed, a version carries no
    more tags than it did before intents existed (Unity Catalog limits tags per version).
    """
    for event in events:
        if event.to_version is None or event.action not in CHAMPION_ACTIONS:
            continue  # awaiting_approval moved no alias and set no intent
        try:
            registry.untag(event.segment, event.to_version, PROMOTION_INTENT)
        except Exception as exc:  # a lingering intent is harmless: the row exists
            log.warning(
                "%s v%s: promotion_intent tag not removed: %s",
                event.model_name,
                event.to_version,
                exc,
            )


# ----------------------------------------------------------------------- reconciliation


def intent_tag(
    at: datetime,
    action: str,
    actor: str,
    reason: str,
    job_run_id: str | None,
    from_version: str | None,
) -> str:
    """The :data:`PROMOTION_INTENT` tag value a promotion sets on its target before moving
    ``champion``: JSON with the time, action, actor, job run, the version it replaces and the
    reason, cut to fit a Unity Catalog tag value."""
    intent: dict[str, str | None] = {
        "at": at.astimezone(timezone.utc).isoformat(),
        "action": action,
        "actor": actor[:80],
        "job_run_id": job_run_id,
        "from_version": from_version,
        "reason": reason,
    }
    text = json.dumps(intent, ensure_ascii=False)
    while len(text) > TAG_VALUE_MAX and intent["reason"]:
        # Escaped characters (quotes, backslashes) take two: cut again if needed.
        intent["reason"] = str(intent["reason"])[: -max((len(text) - TAG_VALUE_MAX) // 2, 1)]
        text = json.dumps(intent, ensure_ascii=False)
    return text


@dataclass(frozen=True)
class AuditedChampion:
    """The newest champion-changing row of one registered model."""

    #: Its ``at``, in microseconds since the epoch.
    at_micros: int
    #: The ``to_version`` of every row at that instant (one, unless two rows tie).
    to_versions: frozenset[str]

    @property
    def version(self) -> str:
        """The trail's last champion (the lowest version string, if two rows tie)."""
        return min(self.to_versions)


def audited_champions(ctx: RunContext, model_names: list[str]) -> dict[str, AuditedChampion]:
    """``{model_name: AuditedChampion}`` of those of ``model_names`` with a champion-changing
    audit row: one read of the (small) audit table, one Spark job; empty without a table."""
    table = ctx.table(names.AUDIT)
    if not model_names or not ctx.tables.exists(table):
        return {}
    rows = (
        ctx.tables.read(table)
        .where(F.col("action").isin(list(CHAMPION_ACTIONS)))
        .where(F.col("model_name").isin(model_names))
        .select("model_name", F.unix_micros("at").alias("at_micros"), "to_version")
        .toPandas()
    )
    found = {}
    for name, group in rows.groupby("model_name"):
        newest = group[group["at_micros"] == group["at_micros"].max()]
        found[str(name)] = AuditedChampion(
            at_micros=int(newest["at_micros"].iloc[0]),
            to_versions=frozenset(str(v) for v in newest["to_version"]),
        )
    return found


def reconcile(
    ctx: RunContext,
    registry: SegmentRegistry,
    champions: Mapping[str, ModelVersion | None],
    *,
    recorder: str | None = None,
    job_run_id: str | None = None,
) -> list[AuditEvent]:
    """Append a :data:`RECONCILED` row for each segment whose champion the trail lacks.

    A gap with a :func:`matching_intent` is a promotion killed after moving ``champion``:
    before the row, what it left undone is done (the version it replaced becomes
    ``previous_champion``, tagged ``deployment_status=rolled_back`` if it was a rollback;
    see :func:`~demand_forecasting.models.registry.finish_promotion`); after the row, as for
    every gap, the champion's intent tag is removed.

    Args:
        ctx: the run context (its audit table).
        registry: the segments' registry.
        champions: ``{segment: champion version}`` as the caller loaded them (None: no
            champion, nothing to reconcile). No registry call is made for a segment whose
            champion is audited; a gap costs one (its ``previous_champion``).
        recorder: who writes the rows (default: Spark's ``current_user()``, asked only when
            there is a gap).
        job_run_id: the job run that writes them (named in the reason; the ``job_run_id``
            column is the run that changed the champion, when known).

    Returns:
        The rows of the gaps found (empty when the trail already accounts for every
        champion); a row that a concurrent reconciliation wrote first is not written again.

    Raises:
        MlflowException: a killed rollback's ``rolled_back`` tag could not be set (no row
            is written then, so that the next reconciliation tries again).
    """
    present = {s: v for s, v in champions.items() if v is not None}
    audited = audited_champions(ctx, sorted({registry.name(s) for s in present}))
    events = []
    for segment, champion in sorted(present.items()):
        last = audited.get(registry.name(segment))
        if last is not None and str(champion.version) in last.to_versions:
            continue
        if recorder is None:
            recorder = current_actor(ctx)
        intent = matching_intent(
            (champion.tags or {}).get(PROMOTION_INTENT),
            last.version if last is not None else None,
            last,
        )
        event = _reconstructed(ctx, registry, segment, champion, last, intent, recorder, job_run_id)
        log.warning(
            "audit reconciliation: champion v%s of %s had no audit row (the trail's last "
            "champion: v%s); appending a %r row (actor %s)",
            event.to_version,
            event.model_name,
            event.from_version or "none",
            RECONCILED,
            event.actor,
        )
        if intent is not None:
            # Before the row: once it is written the gap is closed, and no later
            # reconciliation would come back to finish the promotion.
            _finish_killed(registry, segment, event, intent)
        events.append(event)
    write_reconciled(ctx, events)
    # As after a completed promotion, the intent goes once the change has its row.
    clear_intents(
        registry, [e for e in events if PROMOTION_INTENT in (present[e.segment].tags or {})]
    )
    return events


def _finish_killed(
    registry: SegmentRegistry, segment: str, event: AuditEvent, intent: dict[str, str | None]
) -> None:
    """Finish what the promotion of ``intent``, killed after moving ``champion``, left
    undone: the replaced version becomes ``previous_champion`` (tagged ``rolled_back``
    when the promotion was a rollback: validation never makes it a challenger again, and
    deploy does not promote it), the champion is tagged so and loses ``challenger``."""
    rollback = intent["action"] == ROLLBACK and event.from_version is not None
    if rollback:
        log.warning(
            "audit reconciliation: the rollback of %s away from v%s was killed before its "
            "audit row, perhaps before tagging v%s %s=%s; tagging it now",
            event.model_name,
            event.from_version,
            event.from_version,
            DEPLOYMENT_STATUS,
            ROLLED_BACK,
        )
    finish_promotion(
        registry,
        segment,
        event.to_version or "",
        event.from_version,
        ROLLED_BACK if rollback else PREVIOUS_CHAMPION,
    )


def reconciliation_id(model_name: str, last: AuditedChampion | None, to_version: str) -> str:
    """The ``audit_id`` of the reconciled row of one gap: the registered model, the trail's
    newest champion row (its time and version) and the registry champion. Every job that
    finds the same gap derives the same id."""
    trail = f"{last.at_micros}:v{last.version}" if last is not None else "none"
    return str(uuid.uuid5(_RECONCILED_IDS, f"{model_name}:{trail}->v{to_version}"))


def _reconstructed(
    ctx: RunContext,
    registry: SegmentRegistry,
    segment: str,
    champion: ModelVersion,
    last: AuditedChampion | None,
    intent: dict[str, str | None] | None,
    recorder: str,
    job_run_id: str | None,
) -> AuditEvent:
    """The reconstructed row of a champion change the trail lacks (see :func:`reconcile`);
    ``intent`` is the version's :func:`matching_intent`."""
    version = str(champion.version)
    tags = dict(champion.tags or {})
    audited = last.version if last is not None else None
    known = [f"registry champion v{version}"]
    if champion.run_id:
        known.append(f"its run {champion.run_id}")
    if tags.get("artifact_hash"):
        known.append("its artifact hash")
    if intent is not None:
        known.append(
            f"{intent['action']} by {intent['actor']} at {intent['at']}"
            f"{' in job run ' + str(intent['job_run_id']) if intent['job_run_id'] else ''}"
            " (the version's promotion_intent tag, set just before the alias moved)"
        )
        unknown = "when exactly the alias moved"
    else:
        unknown = "who changed the champion, when and why"
    notes = []
    previous = registry.alias(segment, PREVIOUS_CHAMPION)
    if intent is not None and audited and (previous is None or str(previous.version) != audited):
        notes.append(
            f"previous_champion set to v{audited} now (was "
            f"{'v' + str(previous.version) if previous is not None else 'unset'}: the "
            f"{intent['action']} was killed before moving it)"
        )
    elif intent is None and previous is not None and str(previous.version) != (audited or ""):
        notes.append(
            f"registry previous_champion is v{previous.version}, not the trail's last "
            f"champion: a change before this one is unaudited too"
        )
    if intent is not None and intent["reason"]:
        notes.append(f"original reason: {intent['reason']}")
    if intent is not None and intent["action"] == ROLLBACK and audited:
        notes.append(f"v{audited} tagged {DEPLOYMENT_STATUS}={ROLLED_BACK} now")
    recorded = f"recorded by {recorder}" + (f" in job run {job_run_id}" if job_run_id else "")
    reason = "; ".join(
        [
            f"audit reconciliation: champion v{version} had no audit row (the trail's last "
            f"champion: v{audited or 'none'}; e.g. a process killed between moving the "
            "alias and writing its row)",
            f"known: {', '.join(known)}",
            f"unknown: {unknown}",
            *notes,
            recorded,
        ]
    )
    return AuditEvent(
        segment=segment,
        model_name=registry.name(segment),
        action=RECONCILED,
        from_version=audited,
        to_version=version,
        run_id=champion.run_id or None,
        actor=(intent["actor"] if intent is not None else None) or UNKNOWN_ACTOR,
        reason=reason,
        model_artifact_hash=tags.get("artifact_hash"),
        target=ctx.target,
        job_run_id=intent["job_run_id"] if intent is not None else None,
        audit_id=reconciliation_id(registry.name(segment), last, version),
    )


def matching_intent(
    text: str | None, audited: str | None, last: AuditedChampion | None
) -> dict[str, str | None] | None:
    """The promotion intent that explains a gap, or None.

    Only an intent that replaced the trail's last champion (``audited``) and was made after
    that champion's row tells who made the change: an older intent (from an earlier
    promotion to the same version), or a hand move of the alias in the registry, does not.
    """
    if not text:
        return None
    try:
        raw = json.loads(text)
        at = datetime.fromisoformat(str(raw["at"]))
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(raw, dict) or at.tzinfo is None:
        return None
    intent = {k: (str(v) if v is not None else None) for k, v in raw.items()}
    if intent.get("from_version") != audited:
        return None
    if last is not None and _micros(at) <= last.at_micros:
        return None
    for key in ("action", "actor", "job_run_id", "reason"):
        intent.setdefault(key, None)
    return intent


def _micros(at: datetime) -> int:
    delta = at - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
