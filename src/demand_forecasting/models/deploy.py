"""Task ``deploy``: promote each segment's ``challenger`` to ``champion``, audited.

Promotion moves aliases only (the version and its artifacts never change): the old champion
becomes ``previous_champion`` (the one-command rollback target), the challenger becomes
``champion`` and loses ``challenger``, and an audit row records who, what, when, why and the
model's artifact hash. A challenger that already is the champion changes nothing.

With ``--require-approval true`` (the bundle's ``require_approval``, on in prod) deploy only
marks challengers ``awaiting_approval`` (tag + audit row); ``demand-forecasting approve``
promotes them. :func:`promote` is shared with the ``rollback`` and ``approve`` commands.

Before changing anything, deploy reconciles the audit trail of the segments it is about to
change (:func:`demand_forecasting.models.audit.reconcile`, with the champions it loads
anyway): a champion whose row a killed run never wrote gets a ``reconciled`` row first, so
the new promotion's row follows it in the trail. After its changes, deploy
retags the versions an older release left with a ``deployment_status`` their aliases no
longer bear out, once per segment model (:mod:`demand_forecasting.models.lifecycle`).
A challenger tagged
``deployment_status=rolled_back`` is not promoted. Validation makes none, except after a
rollback killed before setting that tag: the rerun month's validation, which comes first,
sees no tag; this reconciliation sets it (:func:`demand_forecasting.models.audit.reconcile`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from mlflow.entities.model_registry import ModelVersion

from demand_forecasting.models.audit import (
    AWAITING_APPROVAL,
    PROMOTE,
    AuditEvent,
    clear_intents,
    current_actor,
    intent_tag,
    reconcile,
    write_audit,
)
from demand_forecasting.models.fallback import is_fallback
from demand_forecasting.models.lifecycle import retag_stale_versions
from demand_forecasting.models.registry import (
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_STATUS,
    PROMOTION_INTENT,
    ROLLED_BACK,
    VALIDATION_REASONS,
    SegmentRegistry,
    add_model_prefix_option,
    awaits_approval,
    finish_promotion,
    read_each_segment,
)
from demand_forecasting.models.segment_data import (
    SegmentSelectionError,
    parse_segments,
    read_history,
)
from demand_forecasting.models.validate import CHALLENGERS_KEY, rolled_back_reason
from demand_forecasting.models.validate import TASK_KEY as VALIDATE_TASK
from demand_forecasting.monitoring.telemetry import record_rows
from demand_forecasting.platform.context import RunContext
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)

TASK_KEY = "deploy"
CHAMPIONS_KEY = "champions"


@dataclass(frozen=True)
class DeployConfig:
    """Parameters of the deploy task."""

    segments: tuple[str, ...] | None
    model_prefix: str
    require_approval: bool
    reason: str = "passed validation"
    job_run_id: str | None = None


@dataclass
class DeploySummary:
    """What deploy changed."""

    promoted: dict[str, str] = field(default_factory=dict)
    awaiting: dict[str, str] = field(default_factory=dict)
    unchanged: dict[str, str] = field(default_factory=dict)
    #: Segments whose champion had no audit row: a ``reconciled`` row was written first.
    reconciled: list[str] = field(default_factory=list)
    #: Versions whose deployment_status an older release left stale, retagged (once per
    #: segment model: :mod:`demand_forecasting.models.lifecycle`).
    retagged: dict[str, list[str]] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0


def promote(
    ctx: RunContext,
    registry: SegmentRegistry,
    segment: str,
    version: str,
    *,
    current: ModelVersion | None,
    action: str,
    actor: str,
    reason: str,
    job_run_id: str | None = None,
) -> AuditEvent | None:
    """Make ``version`` the segment's champion; return the audit event (None: no change).

    ``current`` is the segment's champion as the caller just loaded it (and reconciled the
    trail with). Before moving the alias, the target is tagged with the promotion's intent
    (:data:`~demand_forecasting.models.registry.PROMOTION_INTENT`), so that a process killed
    before its audit row is written leaves who and why in the registry. The old champion
    becomes ``previous_champion``; ``challenger`` is removed if it named this version
    (:func:`~demand_forecasting.models.registry.finish_promotion`).

    Raises:
        LookupError: the version does not exist.
    """
    target = registry.version(segment, version)
    previous = current
    if previous is not None and str(previous.version) == str(target.version):
        log.info("segment %s: version %s is already champion", segment, version)
        return None
    from_version = str(previous.version) if previous is not None else None
    intent = intent_tag(ctx.clock(), action, actor, reason, job_run_id, from_version)
    registry.tag(segment, str(target.version), {PROMOTION_INTENT: intent})
    # ``champion`` moves first: killed before it, nothing changed; killed after it, the
    # trail has a gap, and the reconciliation that closes it finishes the moves below from
    # the intent. (Moved second, ``previous_champion`` would be left naming the champion.)
    registry.set_alias(segment, CHAMPION, str(target.version))
    finish_promotion(registry, segment, str(target.version), from_version)
    log.info(
        "segment %s: champion %s -> %s (%s by %s: %s)",
        segment,
        previous.version if previous is not None else "none",
        target.version,
        action,
        actor,
        reason,
    )
    return AuditEvent(
        segment=segment,
        model_name=registry.name(segment),
        action=action,
        from_version=from_version,
        to_version=str(target.version),
        run_id=target.run_id,
        actor=actor,
        reason=reason,
        model_artifact_hash=(target.tags or {}).get("artifact_hash"),
        target=ctx.target,
        job_run_id=job_run_id,
    )


def run(ctx: RunContext, cfg: DeployConfig) -> DeploySummary:
    """Promote (or, with approval required, mark) every segment's challenger."""
    published = ctx.handover.read(VALIDATE_TASK, CHALLENGERS_KEY, None)
    if published is not None:
        segments = sorted(published)
        if cfg.segments is not None:
            segments = [s for s in segments if s in cfg.segments]
    else:
        segments = list(read_history(ctx, cfg.segments).segments)
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, cfg.model_prefix)
    summary = DeploySummary(rows_in=len(segments))
    actor = current_actor(ctx)

    # The registry reads first (the champion is needed below anyway), several segments at
    # a time: the trail of the segments about to change is reconciled before any of them
    # changes, and the changes below go one segment after another, in this order.
    def aliases(segment: str) -> tuple[ModelVersion, ModelVersion | None] | None:
        challenger = registry.alias(segment, CHALLENGER)
        if challenger is None:
            return None
        return challenger, registry.alias(segment, CHAMPION)

    loaded = {
        segment: pair
        for segment, pair in read_each_segment(segments, aliases).items()
        if pair is not None
    }
    reconciled = reconcile(
        ctx,
        registry,
        {s: champion for s, (_, champion) in loaded.items()},
        recorder=actor,
        job_run_id=cfg.job_run_id,
    )
    summary.reconciled = [e.segment for e in reconciled]
    for segment in summary.reconciled:
        # The reconciliation may have completed a killed rollback, tagging this version.
        challenger, champion = loaded[segment]
        loaded[segment] = (registry.version(segment, str(challenger.version)), champion)
    events: list[AuditEvent] = []
    try:
        for segment, (challenger, champion) in loaded.items():
            version = str(challenger.version)
            if (challenger.tags or {}).get(DEPLOYMENT_STATUS) == ROLLED_BACK:
                registry.delete_alias(segment, CHALLENGER)
                why = rolled_back_reason(segment, version)
                summary.unchanged[segment] = f"{why} (its challenger alias is removed)"
                log.warning("deploy: segment %s: %s", segment, summary.unchanged[segment])
                continue
            reason = promotion_reason(cfg.reason, challenger)
            if cfg.require_approval:
                if awaits_approval(challenger):
                    summary.unchanged[segment] = f"version {version} already awaits approval"
                    continue
                registry.tag(segment, version, {DEPLOYMENT_STATUS: AWAITING_APPROVAL})
                events.append(
                    AuditEvent(
                        segment=segment,
                        model_name=registry.name(segment),
                        action=AWAITING_APPROVAL,
                        from_version=str(champion.version) if champion is not None else None,
                        to_version=version,
                        run_id=challenger.run_id,
                        actor=actor,
                        reason=f"{reason}; approval required (demand-forecasting approve)",
                        model_artifact_hash=(challenger.tags or {}).get("artifact_hash"),
                        target=ctx.target,
                        job_run_id=cfg.job_run_id,
                    )
                )
                summary.awaiting[segment] = version
                continue
            event = promote(
                ctx,
                registry,
                segment,
                version,
                current=champion,
                action=PROMOTE,
                actor=actor,
                reason=reason,
                job_run_id=cfg.job_run_id,
            )
            if event is None:
                registry.delete_alias(segment, CHALLENGER)
                summary.unchanged[segment] = f"version {version} already champion"
            else:
                events.append(event)
                summary.promoted[segment] = version
    finally:
        # Every alias moved (or approval tag set) so far is audited, even when a later
        # segment fails: a rerun finds no challenger (or the tag already set) there, so it
        # would never audit that change.
        write_audit(ctx, events)
        clear_intents(registry, events)
    summary.retagged = retag_stale_versions(registry, list(loaded))
    summary.rows_out = len(events)
    record_rows(rows_in=summary.rows_in, rows_out=summary.rows_out)
    ctx.handover.publish(TASK_KEY, {CHAMPIONS_KEY: summary.promoted})
    log.info(
        "deploy: %d promoted, %d awaiting approval, %d unchanged, %d champion(s) without "
        "audit row reconciled",
        len(summary.promoted),
        len(summary.awaiting),
        len(summary.unchanged),
        len(summary.reconciled),
    )
    return summary


def promotion_reason(reason: str, challenger: ModelVersion) -> str:
    """The audit reason of promoting ``challenger``: a fallback says why it stands in."""
    if not is_fallback(challenger):
        return reason
    why = (challenger.tags or {}).get(VALIDATION_REASONS, "seasonal-naive fallback")
    return f"{reason}: {why}"


def parse_bool(text: str) -> bool:
    """``true``/``false`` (and 1/0, yes/no) as a bundle variable renders them.

    Raises:
        ValueError: anything else.
    """
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{text!r} is not a boolean: use true or false")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The deploy task's own options (bundle variables)."""
    parser.add_argument(
        "--segments",
        default="all",
        help="all, a comma list or a JSON list (default in a job: the "
        "validate_models task's challengers)",
    )
    add_model_prefix_option(parser)
    parser.add_argument(
        "--require-approval",
        default="false",
        help="true: only mark challengers awaiting approval (bundle var require_approval)",
    )
    parser.add_argument("--reason", default="passed validation", help="recorded in the audit table")


def make_config(args: argparse.Namespace) -> DeployConfig:
    """Typed config from the parsed options."""
    try:
        segments = parse_segments(args.segments)
    except SegmentSelectionError as exc:
        raise ValueError(str(exc)) from exc
    try:
        approval = parse_bool(args.require_approval)
    except ValueError as exc:
        raise ValueError(f"--require-approval: {exc}") from exc
    return DeployConfig(
        segments=segments,
        model_prefix=args.model_prefix,
        require_approval=approval,
        reason=args.reason,
        job_run_id=args.job_run_id,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-deploy``."""
    run_task(
        TASK_KEY,
        "Promote each segment's challenger to champion (or mark it awaiting "
        "approval), with an audit row.",
        add_arguments,
        make_config,
        run,
        argv,
    )
