"""``demand-forecasting rollback SEGMENT [--to VERSION]``: restore an earlier champion, audited.

Without ``--to`` the segment's ``previous_champion`` comes back. The rolled-back version
becomes ``previous_champion`` in turn, so a second rollback undoes the first, and is tagged
``deployment_status=rolled_back``, so that a rerun of the month (which reuses it as its
candidate) does not validate and promote it again. A rollback killed after moving the alias
but before that tag is completed by the next reconciliation of the audit trail (deploy,
approve, rollback, score: :func:`demand_forecasting.models.audit.reconcile`): it sets the
tag, as the ``promotion_intent`` tag the rollback left says. The rerun of such a rollback,
with its own parameters, does not undo it: while the trail's newest change is the
``reconciled`` row away from the previous champion (tagged rolled back), that version comes
back only if ``--to`` names it. Forecasts already written stay
until the next scoring; when the newest run month's were made by the rolled-back version,
the command says so and to rerun the month. Example::

    demand-forecasting rollback new_south_wales__food_retailing \\
        --catalog dev --schema demand_forecasting --reason "bad forecasts after promotion"

Off Databricks it acts on the local registry, so a target other than ``dev`` is refused
unless ``--local`` says that is meant (:mod:`demand_forecasting.models.command_context`).
On Databricks, start the bundle's ``rollback`` job (``resources/rollback_job.yml``) with its
job parameters ``segment``, ``to_version`` (empty: the previous champion), ``reason`` and
``actor``, as the ``approve`` job is started (docs/deployment.md, "Approving and rolling
back"); it runs :func:`task_main` (entry point ``df-rollback``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.models.audit import (
    CHAMPION_ACTIONS,
    RECONCILED,
    ROLLBACK,
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
    PREVIOUS_CHAMPION,
    ROLLED_BACK,
    SegmentRegistry,
    add_model_prefix_option,
    awaits_approval,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)


class RollbackError(RuntimeError):
    """The rollback cannot be done as asked (no champion, nothing to roll back to)."""


def rollback(
    ctx: RunContext,
    model_prefix: str,
    segment: str,
    to_version: str | None,
    reason: str,
    actor: str | None = None,
    job_run_id: str | None = None,
) -> str:
    """Make ``to_version`` (default: the previous champion) the champion again; audit it
    (with ``job_run_id`` when a job does it).

    Returns:
        The version that is champion now.

    Raises:
        RollbackError: the segment has no champion, no previous champion (and no ``--to``),
            or the target already is the champion.
        LookupError: ``to_version`` does not exist.
    """
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, model_prefix)
    current = registry.alias(segment, CHAMPION)
    who = actor or current_actor(ctx)
    # First the trail (also when the rollback is refused below: the rerun of a rollback
    # killed before its row finds the target already champion).
    reconcile(ctx, registry, {segment: current}, recorder=who, job_run_id=job_run_id)
    if current is None:
        raise RollbackError(_no_champion(registry, segment))
    if to_version is None:
        previous = registry.alias(segment, PREVIOUS_CHAMPION)
        if previous is None:
            raise RollbackError(
                f"segment {segment!r} has no previous champion recorded; pass "
                "--to VERSION to choose the version to restore"
            )
        to_version = str(previous.version)
        if (previous.tags or {}).get(DEPLOYMENT_STATUS) == ROLLED_BACK and _reconciled_away_from(
            ctx, registry.name(segment), to_version
        ):
            raise RollbackError(
                f"version {current.version} is the champion of {segment!r} by a rollback "
                f"killed before its audit row (its row is reconciled), and version "
                f"{to_version} was rolled back by it; pass --to {to_version} to restore it anyway"
            )
    if str(current.version) == str(to_version):
        raise RollbackError(f"version {to_version} already is the champion of {segment!r}")
    event = promote(
        ctx,
        registry,
        segment,
        str(to_version),
        current=current,
        action=ROLLBACK,
        actor=who,
        reason=reason,
        job_run_id=job_run_id,
    )
    assert event is not None  # the target differs from the champion
    # After promote's previous_champion tag: validation skips a version tagged so. (Killed
    # before this line, the next reconciliation sets it, from the intent promote set.)
    registry.tag(segment, str(current.version), {DEPLOYMENT_STATUS: ROLLED_BACK})
    write_audit(ctx, [event])
    clear_intents(registry, [event])
    log.info("segment %s rolled back: champion %s -> %s", segment, current.version, to_version)
    stale = forecasts_by(ctx, segment, str(current.version))
    if stale is not None:
        log.warning(
            "%s still holds the forecasts of run month %s that segment %s's version %s made "
            "(BI reads them): rerun the monthly job for that month (its score task replaces "
            "them; version %s is not promoted again) to forecast with version %s now",
            ctx.table(names.FORECASTS),
            stale.strftime("%Y-%m"),
            segment,
            current.version,
            current.version,
            to_version,
        )
    return str(to_version)


def _no_champion(registry: SegmentRegistry, segment: str) -> str:
    """Why a segment without a champion cannot be rolled back: a typo (no such model), or a
    segment not yet promoted (prod before its first approval), whose first champion is
    approved, not rolled back to."""
    if registry.model_tags(segment) is None:
        return (
            f"segment {segment!r} has no registered model {registry.name(segment)}: check the "
            "segment name and --catalog/--schema"
        )
    challenger = registry.alias(segment, CHALLENGER)
    awaiting = (
        f"; its challenger v{challenger.version} awaits approval: approve "
        f"{segment}={challenger.version} (the approve job) once reviewed"
        if awaits_approval(challenger)
        else ""
    )
    return (
        f"segment {segment!r} ({registry.name(segment)}) has no champion yet, so there is "
        "nothing to roll back: a rollback replaces the champion. Its first champion is "
        f"promoted by deploy, or approved where approval is required{awaiting}"
    )


def _reconciled_away_from(ctx: RunContext, model_name: str, version: str) -> bool:
    """Whether the trail's newest champion change of ``model_name`` is a ``reconciled`` row
    from ``version`` (a change killed before its own row, such as a rollback away from it)."""
    table = ctx.table(names.AUDIT)
    if not ctx.tables.exists(table):
        return False
    newest = (
        ctx.tables.read(table)
        .where((F.col("model_name") == model_name) & F.col("action").isin(list(CHAMPION_ACTIONS)))
        .orderBy(F.col("at").desc())
        .select("action", "from_version")
        .first()
    )
    return newest is not None and (newest["action"], newest["from_version"]) == (
        RECONCILED,
        version,
    )


def forecasts_by(ctx: RunContext, segment: str, version: str) -> date | None:
    """The newest run month of the forecast table if ``version`` made the segment's forecasts
    of that month (None: no forecast table, no rows of the segment, or another version)."""
    table = ctx.table(names.FORECASTS)
    if not ctx.tables.exists(table):
        return None
    rows = ctx.tables.read(table).where(F.col("segment") == segment)
    newest = rows.agg(F.max("run_month")).first()
    if newest is None or newest[0] is None:
        return None
    made = rows.where((F.col("run_month") == newest[0]) & (F.col("model_version") == version))
    return newest[0] if made.limit(1).count() else None


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``demand-forecasting rollback``."""
    parser.add_argument("segment", help="segment whose champion to restore")
    parser.add_argument(
        "--to",
        dest="to_version",
        default=None,
        help="version to restore (default: the previous champion)",
    )
    parser.add_argument("--reason", required=True, help="why; recorded in the audit table")
    add_context_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 with a message when the rollback is refused."""
    try:
        ctx = command_context("rollback", args)
    except RegistryChoiceError as exc:
        log.error("rollback refused: %s", exc)
        return 1
    try:
        version = rollback(
            ctx, args.model_prefix, args.segment, args.to_version, args.reason, args.actor
        )
    except (RollbackError, LookupError) as exc:
        log.error("rollback refused: %s", exc)
        return 1
    log.info("champion of %s is now version %s", args.segment, version)
    return 0


# ----------------------------------------------------------------- the rollback job's task

TASK_KEY = "rollback"


@dataclass(frozen=True)
class RollbackConfig:
    """Parameters of the rollback job's task (its job parameters)."""

    segment: str
    to_version: str | None
    reason: str
    actor: str
    model_prefix: str
    job_run_id: str | None


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """The rollback task's options; the job passes its job parameters into them."""
    parser.add_argument("--segment", default="", help="the segment whose champion to restore")
    parser.add_argument(
        "--to-version", default="", help="the version to restore (empty: the previous champion)"
    )
    parser.add_argument("--reason", default="", help="why (incident, ticket); audited")
    parser.add_argument("--actor", default="", help="who rolls back (e-mail); audited")
    add_model_prefix_option(parser)


def make_task_config(args: argparse.Namespace) -> RollbackConfig:
    """Typed config; segment, reason and actor must be given.

    Raises:
        ValueError: a required job parameter is empty (the message names it).
    """
    for name in ("segment", "reason", "actor"):
        if not str(getattr(args, name)).strip():
            raise ValueError(
                f"job parameter '{name}' is empty; start the rollback job with job parameters "
                "segment, reason (incident, ticket), actor (your e-mail) and, to choose the "
                "version, to_version (empty: the previous champion)"
            )
    return RollbackConfig(
        segment=args.segment.strip(),
        to_version=args.to_version.strip() or None,
        reason=args.reason.strip(),
        actor=args.actor.strip(),
        model_prefix=args.model_prefix,
        job_run_id=args.job_run_id,
    )


def run(ctx: RunContext, config: RollbackConfig) -> str:
    """Roll back as the job's parameters say; the version that is champion now.

    Raises:
        RollbackError, LookupError: as :func:`rollback` (the run fails, saying why).
    """
    return rollback(
        ctx,
        config.model_prefix,
        config.segment,
        config.to_version,
        config.reason,
        actor=config.actor,
        job_run_id=config.job_run_id,
    )


def task_main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-rollback``: the task of the bundle's ``rollback`` job."""
    run_task(
        TASK_KEY,
        "Restore a segment's previous (or a chosen) champion, audited with the actor and "
        "the reason.",
        add_task_arguments,
        make_task_config,
        run,
        argv,
    )
