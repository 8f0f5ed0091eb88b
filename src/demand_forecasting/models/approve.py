"""``demand-forecasting approve SEGMENT... | --all``: promote challengers awaiting approval.

In a target with ``require_approval: true`` (prod), the deploy task only tags each passing
challenger ``deployment_status=awaiting_approval`` and audits that. A person (or an approval
job) then promotes them, audited with their name and reason::

    demand-forecasting approve --all --catalog prod --schema demand_forecasting \\
        --target prod --reason "reviewed evaluation table, CAB-1234"
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from demand_forecasting.models.audit import APPROVE, AuditEvent, current_actor, write_audit
from demand_forecasting.models.deploy import promote
from demand_forecasting.models.registry import (
    AWAITING_APPROVAL,
    CHALLENGER,
    DEPLOYMENT_STATUS,
    SegmentRegistry,
)
from demand_forecasting.models.rollback import add_context_options
from demand_forecasting.models.segment_data import read_history
from demand_forecasting.platform.context import RunContext, build_context

log = logging.getLogger(__name__)


def awaiting(registry: SegmentRegistry, segments: Sequence[str]) -> dict[str, str]:
    """``{segment: version}`` of challengers tagged awaiting approval."""
    found = {}
    for segment, version in registry.segments_with(segments, CHALLENGER).items():
        if (version.tags or {}).get(DEPLOYMENT_STATUS) == AWAITING_APPROVAL:
            found[segment] = str(version.version)
    return found


def approve(
    ctx: RunContext,
    model_prefix: str,
    segments: Sequence[str] | None,
    reason: str,
    actor: str | None = None,
) -> dict[str, str]:
    """Promote the awaiting challengers of ``segments`` (None: every segment).

    Returns:
        ``{segment: version}`` promoted.

    Raises:
        LookupError: a named segment has no challenger awaiting approval.
    """
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, model_prefix)
    scope = list(segments) if segments else list(read_history(ctx, None).segments)
    pending = awaiting(registry, scope)
    if segments:
        missing = sorted(set(segments) - set(pending))
        if missing:
            raise LookupError(
                f"segments {missing} have no challenger awaiting approval; run "
                "the deploy task first (with require_approval true)"
            )
    who = actor or current_actor(ctx)
    events: list[AuditEvent] = []
    for segment, version in sorted(pending.items()):
        event = promote(ctx, registry, segment, version, action=APPROVE, actor=who, reason=reason)
        if event is not None:
            events.append(event)
    write_audit(ctx, events)
    return {e.segment: e.to_version for e in events}


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``demand-forecasting approve``."""
    parser.add_argument("segments", nargs="*", help="segments to approve")
    parser.add_argument(
        "--all", action="store_true", help="approve every challenger awaiting approval"
    )
    parser.add_argument(
        "--reason", required=True, help="why (ticket, review); recorded in the audit table"
    )
    add_context_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 when nothing could be approved as asked."""
    if not args.segments and not args.all:
        log.error("name the segments to approve, or pass --all")
        return 1
    ctx = build_context(args.target, args.catalog, args.schema)
    try:
        done = approve(ctx, args.model_prefix, args.segments or None, args.reason, args.actor)
    except LookupError as exc:
        log.error("approve refused: %s", exc)
        return 1
    log.info(
        "approved %d segment(s): %s",
        len(done),
        ", ".join(f"{s} v{v}" for s, v in sorted(done.items())) or "none",
    )
    return 0
