"""Approve: promote the challengers that the deploy task left awaiting approval.

In a target with ``require_approval: true`` (prod), the deploy task only tags each passing
challenger ``deployment_status=awaiting_approval`` and audits that. A person then promotes
them; each promotion gets an audit row with their name, their reason and (in a job) the run.

On Databricks, start the bundle's ``approve`` job (``resources/approval_job.yml``, named
``demand-forecasting-approve``; those with CAN_MANAGE_RUN or more on it, the admins group,
can), with its job parameters ``segments`` (``all``, or a comma list of ``segment`` or
``segment=version``), ``reason`` and ``approver``: in the Jobs UI (*Run now with different
parameters*), or::

    databricks jobs run-now --json '{"job_id": <id>, "job_parameters": {"segments":
        "nsw_food=7,vic_food=3", "reason": "reviewed model_evaluations, CAB-1234",
        "approver": "jane.doe@contoso.com"}}'

``segment=version`` (pinned; the monthly report's "Awaiting approval" section prints the
list for the versions it shows) promotes that version only: if a monthly run validated a
newer challenger after the review, the approval is refused, naming both versions, and
nothing is promoted. A plain ``segment`` (and ``all``) promotes whichever version awaits
approval when the job runs, for scripts; the audit row says which of the two it was.

The job runs :func:`task_main` (entry point ``df-approve``) as the target's service principal.
(``databricks bundle run approve -t prod -- --segments=all ...`` does the same, but only when
the CLI runs as the identity that deployed prod: the bundle finds its jobs in that identity's
folder. See docs/deployment.md, "Approving and rolling back".)

Locally, ``demand-forecasting approve SEGMENT[=VERSION]... | --all --reason ...`` acts on the local
registry under ``.local/``. There a target other than ``dev`` is refused, because a person
typing ``--target prod`` on a laptop means prod's models, which this process cannot reach;
add ``--local`` to approve in the local registry of a local ``-t prod`` run on purpose.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion

from demand_forecasting import names
from demand_forecasting.models import approval_requests
from demand_forecasting.models.approval_requests import REPORTED_PREFIX, reported_month
from demand_forecasting.models.audit import (
    APPROVE,
    AuditEvent,
    clear_intents,
    current_actor,
    reconcile,
    write_audit,
)
from demand_forecasting.models.command_context import (
    RegistryChoiceError,
    add_context_options,
    command_context,
)
from demand_forecasting.models.deploy import promote
from demand_forecasting.models.registry import (
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_STATUS,
    ROLLED_BACK,
    VALIDATION_REASONS,
    VALIDATION_STATUS,
    SegmentRegistry,
    add_model_prefix_option,
    read_each_segment,
)
from demand_forecasting.models.segment_data import (
    parse_segments,
    read_history,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)


def pinned_versions(items: Sequence[str]) -> dict[str, str | None]:
    """``{segment: version}`` from ``segment=version`` items, ``{segment: None}`` from
    plain ``segment`` ones (in their order).

    Raises:
        ValueError: an item has no segment before ``=``, or no version number after it, or
            names a segment already named with another version.
    """
    pins: dict[str, str | None] = {}
    for item in items:
        segment, pinned, version = (part.strip() for part in item.partition("="))
        if not segment:
            raise ValueError(f"{item!r}: no segment before '=' (write segment=version)")
        if pinned and not version.isdigit():
            raise ValueError(
                f"{item!r}: the version after '=' must be a version number, as the report's "
                "'Awaiting approval' section shows it (e.g. nsw_food=7)"
            )
        pin = version if pinned else None
        if segment in pins and pins[segment] != pin:
            raise ValueError(
                f"segment {segment} is named twice (versions {pins[segment] or 'unpinned'} and "
                f"{pin or 'unpinned'}): name it once"
            )
        pins[segment] = pin
    return pins


def approve(
    ctx: RunContext,
    model_prefix: str,
    segments: Sequence[str] | None,
    reason: str,
    actor: str | None = None,
    job_run_id: str | None = None,
) -> dict[str, str]:
    """Promote the awaiting challengers of ``segments`` (None: every segment).

    A segment named ``segment=version`` (pinned) is promoted only if that version still is
    its challenger awaiting approval: a monthly run that validated a newer challenger after
    the approver's review makes the approval refuse, instead of promoting a version nobody
    reviewed. A plain ``segment`` promotes whichever version awaits when this runs.

    Args:
        ctx: the run context (its registry and audit table are the ones changed).
        model_prefix: registered models are ``<catalog>.<schema>.<prefix>_<segment>``.
        segments: the segments to approve, each ``segment`` or ``segment=version``, or
            ``reported:YYYY-MM`` alone: each version that month's report listed as awaiting
            approval, pinned (:mod:`~demand_forecasting.models.approval_requests`); None:
            every segment awaiting approval.
        reason: why; recorded on every audit row, with the version and whether it was pinned.
        actor: who approves (default: Spark's ``current_user()``).
        job_run_id: the job run that approves, if any; recorded on every audit row.

    Returns:
        ``{segment: version}`` promoted.

    Raises:
        LookupError: a named segment has no challenger awaiting approval, or not the pinned
            version, or (every segment) none has, or the month's report listed none; nothing
            is promoted then.
        ValueError: a ``segment=version`` item is malformed (:func:`pinned_versions`), or a
            ``reported:`` one (:func:`~demand_forecasting.models.approval_requests.
            reported_month`).
        FileNotFoundError: every segment was asked and the feature table does not exist.
    """
    month = reported_month(segments) if segments else None
    if month is not None:
        segments = [f"{s}={v}" for s, v in approval_requests.reported(ctx, month).items()]
        reason = f"{reason}; as listed in the report of {month:%Y-%m}"
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, model_prefix)
    pins = pinned_versions(segments) if segments else {}
    scope = list(pins) if segments else list(read_history(ctx, None).segments)
    who = actor or current_actor(ctx)
    # First the trail: a champion whose row a killed run never wrote (a rerun of a killed
    # approve finds nothing awaiting and stops below) gets a reconciled row, before the
    # promotions here add theirs.
    champions = read_each_segment(scope, lambda segment: registry.alias(segment, CHAMPION))
    reconciled = reconcile(ctx, registry, champions, recorder=who, job_run_id=job_run_id)
    pending = registry.awaiting_approval(scope)
    if segments:
        # Refused: nothing awaits, or another version than the one pinned.
        refused = sorted(s for s in pins if s not in pending or pins[s] not in (None, pending[s]))
        if refused:
            why = read_each_segment(
                refused,
                lambda segment: refusal_reason(
                    registry, segment, pins[segment], pending.get(segment), champions.get(segment)
                ),
            )
            raise LookupError(
                f"nothing was approved: {len(refused)} named segment(s) have no challenger "
                f"awaiting approval in {ctx.catalog}.{ctx.schema} (model prefix "
                f"{model_prefix!r}), or not the version named: "
                + "; ".join(f"{_named(s, pins[s])}: {why[s]}" for s in refused)
                + _known_segments(ctx, why)
                + (approval_requests.newer_report_hint(ctx, month) if month else "")
                + _reconciled_note(reconciled)
            )
    elif not pending:
        raise LookupError(
            f"no challenger awaits approval in {ctx.catalog}.{ctx.schema} (model prefix "
            f"{model_prefix!r}, {len(scope)} segments): the deploy task marks passing "
            "challengers only when require_approval is true; nothing was approved"
            + _reconciled_note(reconciled)
        )
    events: list[AuditEvent] = []
    try:
        for segment, version in sorted(pending.items()):
            event = promote(
                ctx,
                registry,
                segment,
                version,
                current=champions[segment],
                action=APPROVE,
                actor=who,
                reason=approval_reason(reason, version, pinned=pins.get(segment) is not None),
                job_run_id=job_run_id,
            )
            if event is not None:
                events.append(event)
    finally:
        # The promotions done before a failure are audited (a rerun would not find them).
        write_audit(ctx, events)
        clear_intents(registry, events)
    return {e.segment: e.to_version for e in events}


def approval_reason(reason: str, version: str, *, pinned: bool) -> str:
    """The audit reason of an approval: the approver's, then the version and whether they
    named it (pinned) or approved whichever challenger awaited."""
    if pinned:
        return f"{reason}; approved v{version} as pinned"
    return f"{reason}; approved v{version}, the challenger when approved (not pinned)"


def _named(segment: str, pin: str | None) -> str:
    return f"{segment} (reviewed v{pin})" if pin is not None else segment


def refusal_reason(
    registry: SegmentRegistry,
    segment: str,
    pin: str | None,
    pending: str | None,
    champion: ModelVersion | None,
) -> str:
    """Why ``segment`` cannot be approved as named: nothing awaits
    (:func:`not_awaiting_reason`), or another version than the pinned one ``pin`` awaits
    (``pending``): then what became of the pinned version, and the command to approve the
    one awaiting once reviewed."""
    if pending is None:
        return not_awaiting_reason(registry, segment, champion)
    try:
        status = (registry.version(segment, str(pin)).tags or {}).get(DEPLOYMENT_STATUS)
        became = f"v{pin} is {status or 'not marked'}"
    except LookupError:
        became = f"{registry.name(segment)} has no v{pin}"
    return (
        f"its challenger awaiting approval is now v{pending}, not the v{pin} named ({became}: "
        f"a later run validated v{pending}); review v{pending} (the report's 'Awaiting "
        f"approval' section, the model_evaluations table) and approve {segment}={pending}"
    )


#: Why :func:`not_awaiting_reason` names no model: a typo, or another schema or prefix.
NO_MODEL = "no registered model"


def not_awaiting_reason(
    registry: SegmentRegistry, segment: str, champion: ModelVersion | None
) -> str:
    """Why ``segment`` has nothing awaiting approval, from its registry (for the refusal).

    ``champion`` is the segment's champion as :func:`approve` loaded it (after which the
    reconciliation changed no alias, only tags and rows).
    """
    challenger = registry.alias(segment, CHALLENGER)
    if challenger is not None:
        status = (challenger.tags or {}).get(DEPLOYMENT_STATUS)
        return (
            f"challenger v{challenger.version} is not marked awaiting approval "
            f"({DEPLOYMENT_STATUS}={status or 'unset'}): the deploy task has not run since "
            "validation, or ran with require_approval false"
        )
    newest = next(iter(registry.iter_versions(segment)), None)
    if newest is None:
        return f"{NO_MODEL} {registry.name(segment)}"
    held = f"; the champion is v{champion.version}" if champion is not None else "; no champion"
    tags = newest.tags or {}
    if champion is not None and str(champion.version) == str(newest.version):
        return f"its newest version v{newest.version} is already the champion"
    if tags.get(DEPLOYMENT_STATUS) == ROLLED_BACK:
        return (
            f"its newest version v{newest.version} was rolled back and is not approved "
            f"again (restore it with `demand-forecasting rollback {segment} --to "
            f"{newest.version}`){held}"
        )
    if tags.get(VALIDATION_STATUS) == "refused":
        reasons = tags.get(VALIDATION_REASONS) or "see the model_evaluations table"
        return f"its newest version v{newest.version} was refused by validation ({reasons}){held}"
    return (
        f"its newest version v{newest.version} is not a challenger ({VALIDATION_STATUS}="
        f"{tags.get(VALIDATION_STATUS) or 'unset'}, {DEPLOYMENT_STATUS}="
        f"{tags.get(DEPLOYMENT_STATUS) or 'unset'}){held}"
    )


def _known_segments(ctx: RunContext, why: dict[str, str]) -> str:
    """The feature table's segments, when a named segment has no model at all (a typo, or
    another catalog, schema or model prefix); empty otherwise."""
    if not any(reason.startswith(NO_MODEL) for reason in why.values()):
        return ""
    try:
        known = read_history(ctx, None).segments
    except FileNotFoundError as exc:
        return f". {exc}"
    shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
    return f". Segments of {ctx.table(names.FEATURES)}: {shown or 'none'}"


def _reconciled_note(reconciled: Sequence[AuditEvent]) -> str:
    """What the reconciliation before the refusal wrote (a rerun of a killed approval
    completes it there), so that the refusal does not read as if nothing happened."""
    if not reconciled:
        return ""
    done = ", ".join(
        f"{e.segment} {'v' + e.from_version if e.from_version else 'none'} -> "
        f"v{e.to_version} (by {e.actor})"
        for e in reconciled
    )
    return (
        f". Audit reconciliation first recorded {len(reconciled)} champion change(s) that had "
        f"no audit row (e.g. an approval killed before writing it): {done}; see their "
        "'reconciled' rows in the audit table"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``demand-forecasting approve``."""
    parser.add_argument(
        "segments",
        nargs="*",
        help="segments to approve; SEGMENT=VERSION (as the report prints it) promotes that "
        "version only, and refuses if a later run made another one the challenger",
    )
    parser.add_argument(
        "--all", action="store_true", help="approve every challenger awaiting approval"
    )
    parser.add_argument(
        "--as-reported",
        metavar="YYYY-MM",
        default=None,
        help="approve exactly the versions that month's report listed under 'Awaiting "
        "approval' (pinned: a version superseded since is refused)",
    )
    parser.add_argument(
        "--reason", required=True, help="why (ticket, review); recorded in the audit table"
    )
    add_context_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 when nothing could be approved as asked."""
    chosen = [*args.segments, *([REPORTED_PREFIX + args.as_reported] if args.as_reported else [])]
    if not chosen and not args.all:
        log.error("name the segments to approve, or pass --as-reported YYYY-MM or --all")
        return 1
    if chosen and args.all:
        log.error("--all approves every segment: name segments (or --as-reported) or --all")
        return 1
    try:
        ctx = command_context("approve", args)
    except RegistryChoiceError as exc:
        log.error("approve refused: %s", exc)
        return 1
    try:
        done = approve(ctx, args.model_prefix, chosen or None, args.reason, args.actor)
    except (LookupError, ValueError, FileNotFoundError) as exc:
        log.error("approve refused: %s", exc)
        return 1
    log.info(
        "approved %d segment(s): %s",
        len(done),
        ", ".join(f"{s} v{v}" for s, v in sorted(done.items())) or "none",
    )
    return 0


# ------------------------------------------------------------------ the approve job's task

TASK_KEY = "approve"


@dataclass(frozen=True)
class ApprovalConfig:
    """Parameters of the approve job's task (its job parameters)."""

    #: ``segment`` or ``segment=version`` items, or ``reported:YYYY-MM`` (None: all).
    segments: tuple[str, ...] | None
    reason: str
    approver: str
    model_prefix: str
    job_run_id: str | None


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """The approve task's options; the job passes its job parameters into them."""
    parser.add_argument(
        "--segments",
        default="",
        help="all, or a comma list of segments to approve, each segment or segment=version "
        "(pinned: only that version is promoted), or reported:YYYY-MM (each version that "
        "month's report listed, pinned)",
    )
    parser.add_argument("--reason", default="", help="why (ticket, review); audited")
    parser.add_argument("--approver", default="", help="who approves (e-mail); audited")
    add_model_prefix_option(parser)


def make_task_config(args: argparse.Namespace) -> ApprovalConfig:
    """Typed config; every job parameter must be given.

    Raises:
        ValueError: a job parameter is empty, or ``--segments`` does not parse; the message
            names it and shows the command that sets it.
    """
    usage = (
        "start the approve job with job parameters segments (all, reported:YYYY-MM, or a "
        "comma list of segment or segment=version), reason (ticket, review) and approver "
        "(your e-mail)"
    )
    for name in ("segments", "reason", "approver"):
        if not str(getattr(args, name)).strip():
            raise ValueError(f"job parameter '{name}' is empty; {usage}")
    try:
        segments = parse_segments(args.segments)
        pinned_versions(segments or ())
        reported_month(segments or ())
    except ValueError as exc:  # SegmentSelectionError is one
        raise ValueError(f"job parameter 'segments': {exc}; {usage}") from exc
    if segments == ():
        raise ValueError(f"job parameter 'segments' names no segment; {usage}")
    return ApprovalConfig(
        segments=segments,
        reason=args.reason.strip(),
        approver=args.approver.strip(),
        model_prefix=args.model_prefix,
        job_run_id=args.job_run_id,
    )


def run(ctx: RunContext, config: ApprovalConfig) -> dict[str, str]:
    """Approve as the job's parameters say; ``{segment: version}`` promoted.

    Raises:
        LookupError: a named segment has no challenger awaiting approval, or (``all``) no
            segment has one (the run fails, saying so).
    """
    done = approve(
        ctx,
        config.model_prefix,
        config.segments,
        config.reason,
        actor=config.approver,
        job_run_id=config.job_run_id,
    )
    log.info(
        "approved by %s: %s",
        config.approver,
        ", ".join(f"{s} v{v}" for s, v in sorted(done.items())),
    )
    return done


def task_main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-approve``: the task of the bundle's ``approve`` job."""
    run_task(
        TASK_KEY,
        "Promote the challengers awaiting approval that the job parameters name, audited "
        "with the approver and the reason.",
        add_task_arguments,
        make_task_config,
        run,
        argv,
    )
