"""Task ``check_drift``: PSI per segment and feature, and the segments to retrain.

For each segment with a champion, the reference window is the last ``reference_months``
months of the feature table *as the champion saw it* (the Delta version in its tags, read by
time travel); the current window is the newest ``current_months`` months of the table now.
Both default to 12: a whole seasonal cycle on each side, so that seasonality is not drift.
PSI per feature and for the target, with the breach rule of
:mod:`demand_forecasting.monitoring.drift`, go to the drift table (replacing the run month's
rows: a rerun writes the same rows, but for the job run and time that decided them). The
segments to retrain go to the job run's hand-over table (``segments_to_train``, read by
``train --segments from-check-drift``: the list grows with the estate); task values carry
``retrain_count`` (int, the job's condition) and ``run_month`` (``YYYY-MM``).

A rerun of a month after its retraining keeps the month's rows and retrains nothing again:
a segment whose champion was trained on data up to the run month is ``already_retrained``,
and one whose candidate of this month was refused waits (``wait_refused``), whether it has
no champion, the fallback, or a champion of its own that kept its place. Both keep the rows,
and so the decision, that the month's first run recorded, with the job run that took it
(``decided_by_job_run``, ``decided_at``); the rows of the segments the rerun decides again
name the rerun.

A segment without champion and with fewer months of history than a model needs (a new
segment whose earlier months were never landed) waits (``wait_history``) instead of failing
``train`` every month until it has them. One without champion (or with the fallback) whose
``challenger`` awaits approval (``require_approval``) waits for the approver
(``wait_approval``): retraining it would supersede the version under review every month.
Only for ``approval_wait_months`` months after that version's data, though: then it is
retrained (``retrain_approval_overdue``), so that a segment nobody approves does not stay
without a model of recent data forever; a new version that passes validation supersedes
the old one, and the approver reviews that.
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import add_month, month_count, parse_month
from demand_forecasting.data.features import CALENDAR, feature_columns
from demand_forecasting.models.features import MIN_HISTORY_MONTHS
from demand_forecasting.models.registry import (
    SegmentRegistry,
    add_model_prefix_option,
    trained_until,
)
from demand_forecasting.monitoring import drift
from demand_forecasting.monitoring.champions import Champion, find_champions, recently_refused
from demand_forecasting.monitoring.drift_table import (
    DRIFT_SCHEMA,
    Reference,
    RowContext,
    existing_records,
    existing_rows,
    segment_rows,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)

TASK_KEY = "check_drift"
#: Hand-over key of the segments to retrain (a JSON list; ``train --segments from-check-drift``).
SEGMENTS_TO_TRAIN = "segments_to_train"
TARGET = "y"
MONTH = "month"
SERIES = "series_id"
#: Up to about this many window rows (series x compared months), PSI is computed on the
#: driver from one collect; above it, per segment on Spark's workers (``applyInPandas``).
#: Both run :func:`demand_forecasting.monitoring.drift.segment_psi` on the same rows.
PSI_DRIVER_MAX_ROWS = 500_000


@dataclass(frozen=True)
class DriftConfig:
    """Parameters of ``check_drift`` (bundle variables in the job's task parameters).

    Raises:
        ValueError: a window shorter than one month.
    """

    rule: drift.DriftRule = field(default_factory=drift.DriftRule)
    reference_months: int = 12
    current_months: int = 12
    model_prefix: str = "demand"
    run_month: date | None = None
    refused_retry_months: int = 3
    #: Months a challenger awaiting approval (no champion, or the fallback) waits before its
    #: segment is retrained anyway (0: only in the month it was trained in).
    approval_wait_months: int = 3
    psi_driver_max_rows: int = PSI_DRIVER_MAX_ROWS
    #: The bundle's horizon: a champion forecasting another one is retrained (None: not judged).
    horizon: int | None = None

    def __post_init__(self) -> None:
        if self.horizon is not None and self.horizon < 1:
            raise ValueError(
                f"horizon={self.horizon}: must be at least 1 month (bundle var horizon)"
            )
        if self.refused_retry_months < 0:
            raise ValueError(
                f"refused_retry_months={self.refused_retry_months}: must be >= 0 "
                "(0 retries a segment without champion every month)"
            )
        if self.approval_wait_months < 0:
            raise ValueError(
                f"approval_wait_months={self.approval_wait_months}: must be >= 0 (0 retrains "
                "a segment whose challenger awaits approval every month after its own)"
            )
        if self.psi_driver_max_rows < 0:
            raise ValueError(
                f"psi_driver_max_rows={self.psi_driver_max_rows}: must be >= 0 "
                "(0 always computes PSI on Spark)"
            )
        for name in ("reference_months", "current_months"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"drift_{name}={getattr(self, name)}: must be at least 1 "
                    "(12 compares whole seasonal cycles)"
                )


@dataclass
class DriftSummary:
    """What ``check_drift`` decided (``rows_in``/``rows_out`` feed the telemetry)."""

    run_month: date
    decision: drift.DriftDecision
    breaches: dict[str, list[str]]
    rows_in: int = 0
    rows_out: int = 0


def drift_features(columns: Sequence[str]) -> list[str]:
    """The target and every gold feature present, except calendar ones (drift by design)."""
    wanted = [TARGET, *[c for c in feature_columns() if c not in CALENDAR]]
    return [c for c in wanted if c in columns]


def window(frame: DataFrame, end: date, months: int, label: str) -> DataFrame:
    """Rows of the ``months`` months ending at ``end``, labelled."""
    return frame.where(
        (F.col(MONTH) <= F.lit(end)) & (F.col(MONTH) > F.add_months(F.lit(end), -months))
    ).withColumn(drift.WINDOW, F.lit(label))


def read_references(
    ctx: RunContext, champions: dict[str, Champion], features: list[str], months: int
) -> tuple[DataFrame | None, dict[str, Reference], list[str]]:
    """Reference rows of the champions' segments, by time travel, one read per version.

    Returns:
        The rows (``segment``, ``window``, features), each segment's :class:`Reference`,
        and the segments whose training data cannot be read (untagged or vacuumed).
    """
    by_source: dict[tuple[str, int], list[str]] = defaultdict(list)
    unreadable: list[str] = []
    for segment, champion in champions.items():
        if champion.training_version is None:
            log.warning(
                "champion %s v%s has no training table version tag: no reference",
                champion.model_name,
                champion.version,
            )
            unreadable.append(segment)
            continue
        table = champion.training_table or ctx.table(names.FEATURES)
        by_source[(table, champion.training_version)].append(segment)
    frames: list[DataFrame] = []
    references: dict[str, Reference] = {}
    for (table, version), segments in sorted(by_source.items()):
        try:
            snapshot = ctx.tables.read(table, version=version)
            snapshot = snapshot.where(F.col(drift.SEGMENT).isin(segments))
            ends = snapshot.groupBy(drift.SEGMENT).agg(F.max(MONTH).alias("_end")).collect()
        except Exception as exc:  # time travel beyond the table's retained history
            log.warning(
                "reference of %s unreadable (%s version %d): %s: retraining them",
                ", ".join(segments),
                table,
                version,
                str(exc).splitlines()[0],
            )
            unreadable.extend(segments)
            continue
        by_end: dict[date, list[str]] = defaultdict(list)
        for row in ends:
            end = row["_end"]
            references[row[drift.SEGMENT]] = Reference(
                table, version, add_month(end, 1 - months), end
            )
            by_end[end].append(row[drift.SEGMENT])
        # One window per distinct end (usually one: the training data's newest month), as
        # a filter: no join, so no broadcast job.
        for end, ending in sorted(by_end.items()):
            frames.append(
                window(
                    snapshot.where(F.col(drift.SEGMENT).isin(ending)),
                    end,
                    months,
                    drift.REFERENCE,
                ).select(drift.SEGMENT, drift.WINDOW, *_features_of(snapshot, features))
            )
    if not frames:
        return None, references, unreadable
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    return rows, references, unreadable


def _features_of(snapshot: DataFrame, features: list[str]) -> list[Column]:
    """``features`` of a table version; null for those it predates (added to gold since):
    their PSI is NaN, never a breach, until the champion is retrained on them."""
    return [
        F.col(f) if f in snapshot.columns else F.lit(None).cast("double").alias(f) for f in features
    ]


def compute_psi(
    rows: DataFrame, features: list[str], rule: drift.DriftRule, on_driver: bool = False
) -> pd.DataFrame:
    """PSI of every (segment, feature) of ``rows`` (``segment``, ``window``, features).

    Args:
        on_driver: collect the rows and compute here (few rows: one Spark job, no Python
            workers); otherwise one segment per group on Spark's workers.
    """
    if on_driver:
        return drift.psi_by_segment(rows.toPandas(), features, rule)

    def per_segment(frame: pd.DataFrame) -> pd.DataFrame:
        return drift.segment_psi(frame, features, rule)

    return (
        rows.groupBy(drift.SEGMENT).applyInPandas(per_segment, schema=drift.PSI_SCHEMA).toPandas()
    )


def short_history(
    segments: Sequence[str], oldest: dict[str, date], newest: dict[str, date]
) -> list[str]:
    """Of ``segments``, those with fewer months from their oldest to their newest month than
    a model needs (:data:`~demand_forecasting.models.features.MIN_HISTORY_MONTHS`), each
    logged with the month it can first be trained in."""
    young = []
    for segment in segments:
        months = month_count(oldest[segment], newest[segment])
        if months < MIN_HISTORY_MONTHS:
            young.append(segment)
            log.info(
                "segment %s has no champion and %d month(s) of history (%s .. %s); a model "
                "needs %d: it waits (wait_history) and is trained from %s on, or once its "
                "earlier months are landed",
                segment,
                months,
                f"{oldest[segment]:%Y-%m}",
                f"{newest[segment]:%Y-%m}",
                MIN_HISTORY_MONTHS,
                f"{add_month(oldest[segment], MIN_HISTORY_MONTHS - 1):%Y-%m}",
            )
    return young


def approval_overdue(
    pending: dict[str, ModelVersion],
    fallback: Collection[str],
    refused: Collection[str],
    run_month: date,
    wait_months: int,
) -> list[str]:
    """Of the segments whose challenger awaits approval (``pending``), those that have
    waited longer than ``wait_months`` (:func:`~demand_forecasting.monitoring.drift.
    approval_refresh_month`), sorted; each segment is logged with what happens to it (those
    ``refused`` recently wait for their retry, and are logged there). A version without a
    ``trained_until`` tag (not made by the train task) cannot say since when it waits: it
    waits, with a warning."""
    overdue = []
    for segment, version in sorted(pending.items()):
        has = "the seasonal-naive fallback" if segment in fallback else "no champion"
        since = trained_until(version)
        if since is None:
            log.warning(
                "segment %s has %s and v%s awaits approval, but has no trained_until tag, so "
                "approval_wait_months cannot apply: it waits for the approver (wait_approval); "
                "approve it, or retrain it with the training job (--segments %s)",
                segment,
                has,
                version.version,
                segment,
            )
            continue
        refresh = drift.approval_refresh_month(since, wait_months)
        if run_month >= refresh:
            overdue.append(segment)
            if segment in refused:
                continue
            log.warning(
                "segment %s: v%s has awaited approval since its data of %s, longer than "
                "approval_wait_months=%d: retrained (retrain_approval_overdue); a new "
                "version that passes validation supersedes it",
                segment,
                version.version,
                f"{since:%Y-%m}",
                wait_months,
            )
        else:
            log.info(
                "segment %s has %s and v%s awaits approval: it waits for the approver "
                "(wait_approval), not retrained this month; retrained in %s if still waiting "
                "(approval_wait_months=%d)",
                segment,
                has,
                version.version,
                f"{refresh:%Y-%m}",
                wait_months,
            )
    return overdue


def run(ctx: RunContext, cfg: DriftConfig) -> DriftSummary:
    """Measure drift for the newest month, write it, and publish the segments to retrain."""
    table = ctx.table(names.FEATURES)
    if not ctx.tables.exists(table):
        raise RuntimeError(
            f"check_drift: the feature table {table} does not exist: run "
            "ingest, validate_data and build_features first"
        )
    current_version = ctx.tables.version(table)
    assert current_version is not None
    gold = ctx.tables.read(table, version=current_version)
    features = drift_features(gold.columns)
    per_segment = gold.groupBy(drift.SEGMENT).agg(
        F.max(MONTH).alias("newest"),
        F.countDistinct(SERIES).alias("series"),
        F.min(MONTH).alias("oldest"),
    )
    newest, series, oldest = {}, {}, {}
    for row in per_segment.collect():
        segment = row[drift.SEGMENT]
        newest[segment], series[segment], oldest[segment] = (
            row["newest"],
            row["series"],
            row["oldest"],
        )
    if not newest:
        raise RuntimeError(f"check_drift: {table} has no rows: nothing to measure")
    run_month = cfg.run_month or max(newest.values())
    segments = sorted(newest)
    champions = find_champions(ctx.mlflow, ctx.catalog, ctx.schema, cfg.model_prefix, segments)
    reference_rows, references, unreadable = read_references(
        ctx, champions, features, cfg.reference_months
    )
    # A champion whose training data lacks its own segment cannot give a reference either.
    unreadable += [s for s in champions if s not in references and s not in unreadable]
    already = sorted(s for s, r in references.items() if r.end >= run_month)
    without_champion = sorted(set(segments) - set(champions))
    young = short_history(without_champion, oldest, newest)
    fallback = sorted(s for s, c in champions.items() if c.fallback)
    waiting = recently_refused(
        ctx.mlflow,
        ctx.catalog,
        ctx.schema,
        cfg.model_prefix,
        without_champion + fallback,
        run_month,
        cfg.refused_retry_months,
    )
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, cfg.model_prefix)
    pending = registry.awaiting_approval_versions(
        sorted(set(without_champion) - set(young)) + fallback
    )
    overdue = approval_overdue(pending, fallback, waiting, run_month, cfg.approval_wait_months)
    # A champion of its own whose challenger of this very month was refused (drift, horizon):
    # a rerun of the month does not retrain it again; it is tried next month.
    kept = recently_refused(
        ctx.mlflow,
        ctx.catalog,
        ctx.schema,
        cfg.model_prefix,
        sorted(set(champions) - set(fallback) - set(already)),
        run_month,
        1,
    )
    for segment, refusal in sorted(kept.items()):
        log.info("segment %s keeps its champion this month (%s)", segment, refusal)
    # Retried in this very month and refused (a rerun of the month): like ``already``, its
    # rows keep the decision the month's first run recorded.
    retried = sorted(
        [s for s, refusal in waiting.items() if refusal.trained_until >= run_month] + list(kept)
    )
    for segment, refusal in sorted(waiting.items()):
        log.info(
            "segment %s has %s and waits (%s; %s)",
            segment,
            "the seasonal-naive fallback" if segment in fallback else "no champion",
            refusal,
            "retried in this month already"
            if segment in retried
            else f"retried {cfg.refused_retry_months} months after",
        )
    existing = existing_rows(ctx, run_month, already + retried)
    to_measure = [s for s in references if s not in existing]

    psi = pd.DataFrame(columns=drift.PSI_COLUMNS)
    if reference_rows is not None and to_measure:
        current = window(
            gold.where(F.col(drift.SEGMENT).isin(to_measure)),
            run_month,
            cfg.current_months,
            drift.CURRENT,
        )
        rows = reference_rows.where(F.col(drift.SEGMENT).isin(to_measure)).unionByName(
            current.select(drift.SEGMENT, drift.WINDOW, *features)
        )
        window_rows = sum(series[s] for s in to_measure) * (
            cfg.reference_months + cfg.current_months
        )
        psi = compute_psi(
            rows, features, cfg.rule, on_driver=window_rows <= cfg.psi_driver_max_rows
        )
    breaching = sorted(set(psi.loc[psi["breach"].astype(bool), "segment"]))
    other_horizon = sorted(
        s
        for s, c in champions.items()
        if cfg.horizon is not None and c.horizon is not None and c.horizon != cfg.horizon
    )
    decision = drift.decide(
        segments,
        breaching,
        without_champion,
        already,
        unreadable,
        recently_refused=waiting,
        fallback=fallback,
        other_horizon=other_horizon,
        kept_champion=kept,
        short_history=young,
        awaiting_approval=pending,
        approval_overdue=overdue,
    )
    for segment in other_horizon:
        if decision.decisions[segment] == drift.RETRAIN_HORIZON:
            log.info(
                "segment %s: its champion forecasts %s months, the bundle's horizon is %s: "
                "retrained",
                segment,
                champions[segment].horizon,
                cfg.horizon,
            )
    current_start = add_month(run_month, 1 - cfg.current_months)
    context = RowContext(
        run_month,
        cfg.rule.threshold,
        current_version,
        current_start,
        champions,
        references,
        job_run_id=ctx.handover.job_run_id,
        decided_at=ctx.clock(),
    )
    records = [
        row
        for s in segments
        if s not in existing
        for row in segment_rows(s, decision.decisions[s], psi, context)
    ]
    records.extend(existing_records(existing))
    # One file: a few rows per segment and feature; more partitions only add write tasks.
    frame = rows_frame(ctx.spark, records, DRIFT_SCHEMA).coalesce(1)
    ctx.tables.write(
        frame,
        ctx.table(names.DRIFT),
        mode="overwrite",
        replaceWhere=f"run_month = DATE'{run_month.isoformat()}'",
        # A table written before decided_by_job_run and decided_at existed gains them.
        mergeSchema="true",
    )

    breaches = {
        s: sorted(psi.loc[(psi["segment"] == s) & psi["breach"].astype(bool), "feature"])
        for s in breaching
    }
    log.info(
        "check_drift %s: %d segments, %d with champion; retrain %d: %s",
        run_month.strftime("%Y-%m"),
        len(segments),
        len(champions),
        decision.retrain_count,
        _describe(decision, breaches),
    )
    ctx.handover.publish(TASK_KEY, {SEGMENTS_TO_TRAIN: list(decision.segments_to_train)})
    ctx.task_values.set("retrain_count", decision.retrain_count)
    ctx.task_values.set("run_month", run_month.strftime("%Y-%m"))
    target_rows = psi[psi["feature"] == TARGET]
    return DriftSummary(
        run_month,
        decision,
        breaches,
        rows_in=int(target_rows["n_reference"].sum() + target_rows["n_current"].sum()),
        rows_out=len(records),
    )


#: How the run's log line names each retraining reason.
_REASONS = {
    drift.RETRAIN_DRIFT: "drift",
    drift.RETRAIN_NO_CHAMPION: "no champion",
    drift.RETRAIN_NO_REFERENCE: "no readable reference",
    drift.RETRAIN_FALLBACK: "fallback champion",
    drift.RETRAIN_HORIZON: "other horizon",
    drift.RETRAIN_APPROVAL_OVERDUE: "approval overdue",
}
#: Segments named per reason in the log line (the drift table holds them all).
_NAMED = 8


def _describe(decision: drift.DriftDecision, breaches: dict[str, list[str]]) -> str:
    grouped: dict[str, list[str]] = defaultdict(list)
    for segment in decision.segments_to_train:
        why = decision.decisions[segment]
        grouped[why].append(
            f"{segment} ({', '.join(breaches.get(segment, []))})"
            if why == drift.RETRAIN_DRIFT
            else segment
        )
    parts = []
    for why, named in grouped.items():
        more = f", and {len(named) - _NAMED} more" if len(named) > _NAMED else ""
        parts.append(f"{_REASONS.get(why, why)} {len(named)}: {', '.join(named[:_NAMED])}{more}")
    return "; ".join(parts) or "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The check_drift task's own options (bundle variables)."""
    parser.add_argument(
        "--psi-threshold",
        type=float,
        default=0.2,
        help="PSI above which a feature has drifted (bundle var psi_threshold)",
    )
    parser.add_argument(
        "--drift-significance",
        type=float,
        default=0.01,
        help="chance that sampling noise alone is called drift; 0 turns the "
        "sample-size gate off (bundle var drift_significance)",
    )
    parser.add_argument(
        "--drift-bins",
        type=int,
        default=10,
        help="PSI bins, at reference quantiles (bundle var drift_bins)",
    )
    parser.add_argument(
        "--drift-reference-months",
        type=int,
        default=12,
        help="months of the champion's training data compared against",
    )
    parser.add_argument(
        "--drift-current-months", type=int, default=12, help="newest months compared"
    )
    add_model_prefix_option(parser)
    parser.add_argument(
        "--refused-retry-months",
        type=int,
        default=3,
        help="a segment without champion whose newest candidate was refused retrains again "
        "this many months after that candidate's data (0: every month; bundle var "
        "refused_retry_months)",
    )
    parser.add_argument(
        "--approval-wait-months",
        type=int,
        default=3,
        help="a segment without champion (or on the fallback) whose challenger awaits "
        "approval is retrained once it waited longer than this many months after its data "
        "(0: every month after its own; bundle var approval_wait_months)",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="months ahead the models forecast (bundle var horizon): a champion forecasting "
        "another horizon is retrained (default: not judged)",
    )
    parser.add_argument(
        "--psi-driver-max-rows",
        type=int,
        default=PSI_DRIVER_MAX_ROWS,
        help="up to this many window rows PSI is computed on the driver, above it on "
        "Spark's workers (0: always on Spark)",
    )
    parser.add_argument(
        "--run-month",
        default=None,
        help="YYYY-MM to measure (default: the feature table's newest month)",
    )


def make_config(args: argparse.Namespace) -> DriftConfig:
    """Typed config from the parsed options."""
    return DriftConfig(
        rule=drift.DriftRule(
            threshold=args.psi_threshold,
            significance=args.drift_significance,
            n_bins=args.drift_bins,
        ),
        reference_months=args.drift_reference_months,
        current_months=args.drift_current_months,
        model_prefix=args.model_prefix,
        run_month=parse_month(args.run_month) if args.run_month else None,
        refused_retry_months=args.refused_retry_months,
        approval_wait_months=args.approval_wait_months,
        psi_driver_max_rows=args.psi_driver_max_rows,
        horizon=args.horizon,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-check-drift``."""
    run_task(
        TASK_KEY,
        "PSI per segment and feature against each champion's training "
        "data; publish the segments to retrain.",
        add_arguments,
        make_config,
        run,
        argv,
    )
