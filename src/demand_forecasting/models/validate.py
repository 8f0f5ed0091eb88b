"""Task ``validate_models``: backtest each candidate against its champion and seasonal naive.

Per segment, on a rolling-origin backtest over the last K full-horizon origins of the current
feature table (``backtest_origins``), the candidate's recipe and the champion's recipe are
fitted at the oldest origin, forecast from each origin (see
:mod:`demand_forecasting.models.backtest`) and are scored with MASE, WAPE and bias on the
same rows as seasonal naive. The train task already ran the candidate's backtest (run param
``backtest``): when it was run on this feature table version with this K and today's gate
metric definition (``metrics.GATE_METRICS_VERSION``), and the champion (if any) has the same
recipe, so that refitting it would repeat the same fit on the same data, those figures are
used as they are; otherwise the backtest runs here (Spark, one task per segment).

The gate (:mod:`demand_forecasting.models.gate`) decides; the result goes to the evaluation
table (MERGE on segment, version and data version, so a rerun adds no row) and onto the
model version (tags and description). Passing versions get
the ``challenger`` alias; failing ones do not, and ``champion`` is never touched here.

A refused candidate of a segment that has no champion gets a seasonal-naive fallback
version (:mod:`demand_forecasting.models.fallback`) with the ``challenger`` alias instead, so
that every segment ends the month with a forecast the gate stands behind; unless the
segment's challenger awaits approval (prod before a first approval): that version keeps the
alias, and the log says why no fallback was made.

A candidate a rollback took the champion away from (tag ``deployment_status=rolled_back``) is
skipped: a rerun of its month reuses it, and must not undo the rollback.

Candidates come from what the train task handed over in this job run (``candidates``, in the
hand-over table); run by hand, each segment's newest trained version (not a fallback) is the
candidate. The challengers go to the hand-over for deploy.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.models.backtest import NAIVE
from demand_forecasting.models.fallback import (
    FALLBACK_FOR_TAG,
    is_fallback,
    newest_trained_version,
    register_fallback,
)
from demand_forecasting.models.gate import GateDecision, GateRule, decide
from demand_forecasting.models.metrics import GATE_METRICS_VERSION, Accuracy
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.registry import (
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_STATUS,
    ROLLED_BACK,
    SUPERSEDED,
    TAG_VALUE_MAX,
    VALIDATION_REASONS,
    VALIDATION_STATUS,
    SegmentRegistry,
    add_model_prefix_option,
    awaits_approval,
    read_each_segment,
)
from demand_forecasting.models.segment_data import (
    SegmentHistory,
    SegmentSelectionError,
    apply_per_segment,
    parse_segments,
    read_history,
)
from demand_forecasting.models.segment_evaluation import (
    CANDIDATE,
    RESULT_COLUMNS,
    RESULT_SCHEMA,
    segment_evaluator,
)
from demand_forecasting.models.segment_evaluation import CHAMPION as CHAMPION_METHOD
from demand_forecasting.models.segment_training import input_example
from demand_forecasting.models.tracking import BACKTEST_PARAM
from demand_forecasting.models.train import CANDIDATES_KEY
from demand_forecasting.models.train import TASK_KEY as TRAIN_TASK
from demand_forecasting.monitoring.telemetry import record_rows, record_segment_seconds
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)

TASK_KEY = "validate_models"
CHALLENGERS_KEY = "challengers"
#: Version tag with the backtest figures the gate used (JSON: mase, naive_mase, data_version).
VALIDATION_FIGURES = "validation_figures"

EVALUATION_SCHEMA = (
    "evaluation_id string, evaluated_at timestamp, segment string, model_name string, "
    "candidate_version string, candidate_run_id string, champion_version string, "
    "candidate_mase double, candidate_wape double, candidate_bias double, "
    "champion_mase double, champion_wape double, champion_bias double, "
    "naive_mase double, naive_wape double, naive_bias double, pairs long, "
    "backtest_origins int, first_origin date, last_origin date, horizon int, "
    "mase_tolerance double, passed boolean, reasons string, training_table string, "
    "data_version long, target string, job_run_id string"
)
EVALUATION_KEY = ("segment", "candidate_version", "data_version")


@dataclass(frozen=True)
class ValidateConfig:
    """Parameters of the validate_models task."""

    segments: tuple[str, ...] | None
    model_prefix: str
    backtest_origins: int
    rule: GateRule
    job_run_id: str | None = None
    #: Validate only what the train task published; nothing when it published nothing (in a
    #: job where this task runs even after train failed, see resources/monthly_job.yml).
    only_train_candidates: bool = False

    def __post_init__(self) -> None:
        if self.backtest_origins < 1:
            raise ValueError(
                f"--backtest-origins {self.backtest_origins}: at least 1 "
                "(bundle variable backtest_origins)"
            )


@dataclass
class ValidateSummary:
    """Gate outcomes of one validation run."""

    passed: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: Segments whose refused candidate left them without a champion: fallback version.
    fallbacks: dict[str, str] = field(default_factory=dict)
    #: Refused segments without a champion that get no fallback, and why: their challenger
    #: awaits approval (:func:`withheld_fallback_reason`).
    fallbacks_withheld: dict[str, str] = field(default_factory=dict)
    backtests_reused: int = 0
    backtests_run: int = 0
    rows_in: int = 0
    rows_out: int = 0


@dataclass(frozen=True)
class Contest:
    """One segment's candidate and champion versions with their recipes."""

    segment: str
    candidate_version: str
    candidate_run_id: str
    candidate_recipe: str
    champion_version: str | None
    champion_recipe: str | None
    candidate_params: dict[str, str] = field(default_factory=dict)

    def logged_backtest(self, table: str, version: int, origins: int) -> dict[str, Any] | None:
        """The train task's backtest of the candidate, if it answers this validation.

        It does when it ran on ``table`` at ``version`` with ``origins`` origins, its figures
        follow today's gate definition (``metrics_version`` =
        :data:`~demand_forecasting.models.metrics.GATE_METRICS_VERSION`; a backtest logged
        before has none, and its MASE is the mean over every pair), and there is no
        champion, or the champion has the candidate's recipe (same fits, same data), or the
        champion is a seasonal-naive fallback (its forecasts are the logged naive ones).
        """
        if (
            self.champion_recipe is not None
            and self.champion_recipe != self.candidate_recipe
            and not self.champion_is_naive
        ):
            return None
        params = self.candidate_params
        if (
            params.get("training_table") != table
            or params.get("training_table_version") != str(version)
            or BACKTEST_PARAM not in params
        ):
            return None
        try:
            logged = json.loads(params[BACKTEST_PARAM])
        except json.JSONDecodeError:
            return None
        if logged.get("origins") != origins:
            return None
        if logged.get("metrics_version") != GATE_METRICS_VERSION:
            log.info(
                "segment %s: the training run's backtest has metrics version %s, the gate's "
                "is %s: backtesting again",
                self.segment,
                logged.get("metrics_version", 1),
                GATE_METRICS_VERSION,
            )
            return None
        return dict(logged)

    @property
    def champion_is_naive(self) -> bool:
        """True when the champion is a seasonal-naive fallback."""
        return self.champion_recipe is not None and _recipe(self.champion_recipe).is_seasonal_naive


def run_params(ctx: RunContext, run_id: str | None) -> dict[str, str]:
    """The params of a version's training run; they include its recipe (param ``recipe``).

    Raises:
        LookupError: no run id, or the run has no recipe param (not trained by this
            project's train task).
    """
    if not run_id:
        raise LookupError("model version has no run id, so its recipe is unknown")
    params = dict(ctx.mlflow.get_run(run_id).data.params)
    if "recipe" not in params:
        raise LookupError(
            f"run {run_id} has no 'recipe' param: it was not logged by the "
            "train task, so it cannot be refitted for the backtest"
        )
    return params


def recipe_of(ctx: RunContext, run_id: str | None) -> str:
    """The recipe JSON a version's training run logged (param ``recipe``).

    Raises:
        LookupError: as :func:`run_params`.
    """
    return run_params(ctx, run_id)["recipe"]


def plan_contests(
    ctx: RunContext,
    registry: SegmentRegistry,
    segments: Sequence[str],
    candidates: dict[str, str] | None,
) -> tuple[list[Contest], dict[str, str]]:
    """Pair each segment's candidate with its champion; say why others are skipped.

    Only reads: the segments' registry and run reads run
    :data:`~demand_forecasting.models.registry.REGISTRY_READ_THREADS` at a time; the
    contests come in the order of ``segments``.
    """

    def plan(segment: str) -> Contest | str | None:
        """The segment's contest, why it is skipped, or None (not a candidate of this run)."""
        if candidates is not None:
            if segment not in candidates:
                return None
            candidate = registry.version(segment, candidates[segment])
        else:
            newest = newest_trained_version(registry, segment)
            if newest is None:
                return "no registered model"
            candidate = newest
        champion = registry.alias(segment, CHAMPION)
        if champion is not None and champion.version == candidate.version:
            return f"version {candidate.version} is already the champion"
        if (candidate.tags or {}).get(DEPLOYMENT_STATUS) == ROLLED_BACK:
            # A rerun of the month reuses the version a person rolled back: never again
            # automatically (new data trains a new version; `rollback --to` restores it).
            return rolled_back_reason(segment, str(candidate.version))
        fallback_for = (champion.tags or {}).get(FALLBACK_FOR_TAG) if champion else None
        if (
            champion is not None
            and is_fallback(champion)
            and fallback_for == str(candidate.version)
        ):
            return (
                f"version {candidate.version} was refused; its seasonal-naive fallback "
                f"v{champion.version} is the champion"
            )
        params = run_params(ctx, candidate.run_id)
        return Contest(
            segment=segment,
            candidate_version=str(candidate.version),
            candidate_run_id=str(candidate.run_id),
            candidate_recipe=params["recipe"],
            champion_version=str(champion.version) if champion is not None else None,
            champion_recipe=recipe_of(ctx, champion.run_id) if champion is not None else None,
            candidate_params=params,
        )

    contests, skipped = [], {}
    for segment, planned in read_each_segment(segments, plan).items():
        if isinstance(planned, Contest):
            contests.append(planned)
        elif planned is not None:
            skipped[segment] = planned
    return contests, skipped


def make_challenger(registry: SegmentRegistry, segment: str, version: str) -> None:
    """Give ``version`` the ``challenger`` alias; a version it takes the alias from that was
    awaiting approval (an earlier month's, never approved) is tagged
    ``deployment_status=superseded``, so that the registry shows one version awaiting
    approval per segment: the one the approve job would promote."""
    previous = registry.alias(segment, CHALLENGER)
    registry.set_alias(segment, CHALLENGER, version)
    if previous is None or str(previous.version) == version:
        return
    if not awaits_approval(previous):
        return
    # After the alias moved: killed in between, the old version keeps its stale tag, never an
    # approvable challenger without one.
    registry.tag(segment, str(previous.version), {DEPLOYMENT_STATUS: SUPERSEDED})
    log.warning(
        "segment %s: v%s, awaiting approval, is superseded by the new challenger v%s (tagged "
        "%s=%s); approving the segment now promotes v%s",
        segment,
        previous.version,
        version,
        DEPLOYMENT_STATUS,
        SUPERSEDED,
        version,
    )


def rolled_back_reason(segment: str, version: str) -> str:
    """Why a rolled-back version is not validated or promoted again, and what to do instead."""
    return (
        f"version {version} was rolled back and is not promoted again automatically; new "
        f"data trains a new candidate, or restore it with "
        f"`demand-forecasting rollback {segment} --to {version}`"
    )


def _accuracy(results: pd.DataFrame, segment: str, method: str) -> Accuracy | None:
    row = results[(results["segment"] == segment) & (results["method"] == method)]
    if row.empty:
        return None
    r = row.iloc[0]
    return Accuracy(float(r["mase"]), float(r["wape"]), float(r["bias"]), int(r["pairs"]))


def run(ctx: RunContext, cfg: ValidateConfig) -> ValidateSummary:
    """Backtest, gate, record and alias every candidate of this run."""
    published = ctx.handover.read(TRAIN_TASK, CANDIDATES_KEY, None)
    candidates = {str(k): str(v) for k, v in published.items()} if published else None
    wanted = cfg.segments
    if candidates is not None:
        wanted = tuple(sorted(set(candidates) & set(wanted))) if wanted else tuple(candidates)
    summary = ValidateSummary()
    if candidates is None and cfg.only_train_candidates:
        log.warning(
            "the train task published no candidates (it did not run, or failed before it "
            "could); nothing to validate: the champions stay as they are"
        )
        ctx.handover.publish(TASK_KEY, {CHALLENGERS_KEY: {}})
        return summary
    if candidates is not None and not candidates:
        log.info("train published no candidates; nothing to validate")
        ctx.handover.publish(TASK_KEY, {CHALLENGERS_KEY: {}})
        return summary
    history = read_history(ctx, wanted)
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, cfg.model_prefix)
    contests, summary.skipped = plan_contests(ctx, registry, history.segments, candidates)
    for segment, why in sorted(summary.skipped.items()):
        log.info("segment %s not validated: %s", segment, why)
    if contests:
        covariates = contest_covariates(contests)
        if covariates:  # the recipes read planned covariates: their history too
            history = read_history(ctx, history.segments, history.version, covariates)
        results = backtest_results(ctx, cfg, history, contests, summary)
        horizon = {c.segment: _horizon(c.candidate_recipe) for c in contests}
        # Each segment's own work (its backtest, its gate and registry updates), for its cost.
        backtests = results.groupby("segment")["seconds"].max().fillna(0.0)
        work = {str(segment): float(seconds) for segment, seconds in backtests.items()}
        rows = []
        for c in contests:
            started = time.perf_counter()
            rows.append(
                _evaluate(
                    ctx,
                    cfg,
                    registry,
                    history.table,
                    history.version,
                    c,
                    results,
                    horizon[c.segment],
                    summary,
                )
            )
            work[c.segment] = work.get(c.segment, 0.0) + time.perf_counter() - started
        record_segment_seconds(work)
        for segment, why in sorted(summary.refused.items()):
            log.warning("segment %s refused: %s", segment, why)
        orphans = [c for c in contests if c.segment in summary.refused and not c.champion_version]
        orphans = [c for c in orphans if not _awaits_a_person(registry, c.segment, summary)]
        if orphans:
            rows += stand_in_fallbacks(ctx, cfg, registry, history, orphans, results, summary)
        write_evaluations(ctx, rows)
        summary.rows_out = len(rows)
    record_rows(rows_in=summary.rows_in, rows_out=summary.rows_out)
    ctx.handover.publish(TASK_KEY, {CHALLENGERS_KEY: {**summary.passed, **summary.fallbacks}})
    log.info(
        "validation: %d passed, %d refused (%d of them get a seasonal-naive fallback, %d keep "
        "a challenger awaiting approval instead), %d skipped",
        len(summary.passed),
        len(summary.refused),
        len(summary.fallbacks),
        len(summary.fallbacks_withheld),
        len(summary.skipped),
    )
    return summary


def _awaits_a_person(registry: SegmentRegistry, segment: str, summary: ValidateSummary) -> bool:
    """Whether the refused ``segment``, which has no champion, has a challenger awaiting
    approval; if so, records and logs why it gets no fallback (one registry read)."""
    challenger = registry.alias(segment, CHALLENGER)
    if not awaits_approval(challenger):
        return False
    why = withheld_fallback_reason(str(challenger.version))
    summary.fallbacks_withheld[segment] = why
    log.warning("segment %s: %s", segment, why)
    return True


def withheld_fallback_reason(awaiting: str) -> str:
    """Why a refused segment without a champion gets no seasonal-naive fallback while
    version ``awaiting`` awaits approval.

    A fallback exists so that a segment with no usable model still gets forecasts. This one
    is not without a model: it waits for a person. Where approval is required, a fallback
    would await approval as well (so it forecasts nothing sooner), and taking the challenger
    alias would supersede the version the approver is reviewing.
    """
    return (
        f"v{awaiting} awaits approval and stays the challenger (no seasonal-naive fallback: "
        f"it would await approval too and supersede v{awaiting}); approve it to forecast the "
        "segment"
    )


def stand_in_fallbacks(
    ctx: RunContext,
    cfg: ValidateConfig,
    registry: SegmentRegistry,
    history: SegmentHistory,
    contests: list[Contest],
    results: pd.DataFrame,
    summary: ValidateSummary,
) -> list[dict[str, object]]:
    """A seasonal-naive fallback challenger for each refused segment without a champion.

    Returns:
        The fallbacks' evaluation rows (their backtest is seasonal naive's own).
    """
    wanted = [c.segment for c in contests]
    recent = (
        history.frame.where(F.col("segment").isin(wanted))
        .select("segment", "series_id", "month", "y")
        .toPandas()
    )
    rows: list[dict[str, object]] = []
    for contest in contests:
        segment = contest.segment
        horizon = _recipe(contest.candidate_recipe).horizon
        naive = _accuracy(results, segment, NAIVE)
        refused = registry.version(segment, contest.candidate_version)
        reason = (
            f"candidate v{contest.candidate_version} refused ({summary.refused[segment]}) "
            "and the segment has no champion"
        )
        example = input_example(recent[recent["segment"] == segment])
        fallback = register_fallback(ctx, registry, segment, refused, horizon, example, reason)
        version = str(fallback.version)
        text = f"seasonal-naive fallback: {reason}"
        registry.tag(
            segment,
            version,
            {
                VALIDATION_STATUS: "fallback",
                VALIDATION_REASONS: text[:TAG_VALUE_MAX],
                VALIDATION_FIGURES: _figures(naive, naive, history.version),
            },
        )
        make_challenger(registry, segment, version)
        summary.fallbacks[segment] = version
        log.warning("segment %s: seasonal-naive fallback v%s is the challenger", segment, version)
        rows.append(
            _evaluation_row(
                ctx,
                cfg,
                registry,
                segment,
                version,
                str(fallback.run_id),
                champion_version=None,
                figures=(naive, None, naive),
                backtest=results[(results["segment"] == segment)].iloc[0],
                horizon=horizon,
                verdict=GateDecision(True, (text,)),
                table=history.table,
                data_version=history.version,
            )
        )
    return rows


def _date_or_none(value: object) -> date | None:
    return value if isinstance(value, date) else None


def backtest_results(
    ctx: RunContext,
    cfg: ValidateConfig,
    history: SegmentHistory,
    contests: list[Contest],
    summary: ValidateSummary,
) -> pd.DataFrame:
    """Every contest's backtest rows (:data:`RESULT_SCHEMA`): logged by train, or run here."""
    logged_rows: list[dict[str, object]] = []
    plan: dict[str, dict[str, str]] = {}
    for c in contests:
        logged = c.logged_backtest(history.table, history.version, cfg.backtest_origins)
        if logged is not None:
            logged_rows += _logged_rows(c, logged)
            continue
        plan[c.segment] = {
            CANDIDATE: c.candidate_recipe,
            **({CHAMPION_METHOD: c.champion_recipe} if c.champion_recipe else {}),
        }
    summary.backtests_reused, summary.backtests_run = len(contests) - len(plan), len(plan)
    log.info(
        "backtests: %d from the training runs (same data version, K and recipe), %d to run",
        summary.backtests_reused,
        summary.backtests_run,
    )
    frames = [pd.DataFrame(logged_rows, columns=RESULT_COLUMNS)] if logged_rows else []
    if plan:
        frame = history.frame.where(F.col("segment").isin(list(plan)))
        summary.rows_in = frame.count()
        frames.append(
            apply_per_segment(
                frame, segment_evaluator(plan, cfg.backtest_origins), RESULT_SCHEMA, len(plan)
            )
        )
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _logged_rows(contest: Contest, logged: dict[str, Any]) -> list[dict[str, object]]:
    """Result rows from a training run's backtest (the champion's are the candidate's when
    it shares the recipe: the same fit on the same data; seasonal naive's when it is the
    fallback)."""
    shared = {
        "segment": contest.segment,
        "first_origin": date.fromisoformat(str(logged["first_origin"])),
        "last_origin": date.fromisoformat(str(logged["last_origin"])),
        "seconds": 0.0,
        "error": None,
    }
    methods = {CANDIDATE: logged[CANDIDATE], NAIVE: logged["naive"]}
    if contest.champion_recipe is not None:
        methods[CHAMPION_METHOD] = logged["naive" if contest.champion_is_naive else CANDIDATE]
    return [
        {**shared, "method": method, **{k: figures[k] for k in ("mase", "wape", "bias", "pairs")}}
        for method, figures in methods.items()
    ]


def contest_covariates(contests: list[Contest]) -> tuple[str, ...]:
    """The planned covariates any candidate's or champion's recipe reads, in first-seen order."""
    texts = [t for c in contests for t in (c.candidate_recipe, c.champion_recipe) if t]
    return tuple(dict.fromkeys(name for t in texts for name in _recipe(t).covariates))


def _horizon(recipe_json: str) -> int:
    return _recipe(recipe_json).horizon


def _recipe(recipe_json: str) -> Recipe:
    return Recipe.from_json(recipe_json)


def _evaluate(
    ctx: RunContext,
    cfg: ValidateConfig,
    registry: SegmentRegistry,
    table: str,
    data_version: int,
    contest: Contest,
    results: pd.DataFrame,
    horizon: int,
    summary: ValidateSummary,
) -> dict[str, object]:
    segment = contest.segment
    errors = results[(results["segment"] == segment) & results["error"].notna()]
    candidate = _accuracy(results, segment, CANDIDATE)
    naive = _accuracy(results, segment, NAIVE)
    champion = _accuracy(results, segment, CHAMPION_METHOD)
    if not errors.empty or candidate is None or naive is None:
        error = str(errors.iloc[0]["error"]) if not errors.empty else "no backtest result"
        decision = GateDecision(False, (f"backtest failed: {error.splitlines()[-1][:300]}",))
    else:
        decision = decide(candidate, naive, champion, cfg.rule, contest.champion_version)
    version = contest.candidate_version
    registry.tag(
        segment,
        version,
        {
            VALIDATION_STATUS: "passed" if decision.passed else "refused",
            VALIDATION_REASONS: decision.text[:TAG_VALUE_MAX],
            VALIDATION_FIGURES: _figures(candidate, naive, data_version),
        },
    )
    registry.describe(
        segment,
        version,
        _description(contest, decision, candidate, naive, champion, table, data_version),
    )
    if decision.passed:
        make_challenger(registry, segment, version)
        summary.passed[segment] = version
    else:
        current = registry.alias(segment, CHALLENGER)
        if current is not None and current.version == version:
            registry.delete_alias(segment, CHALLENGER)
        summary.refused[segment] = decision.text
    return _evaluation_row(
        ctx,
        cfg,
        registry,
        segment,
        version,
        contest.candidate_run_id,
        champion_version=contest.champion_version,
        figures=(candidate, champion, naive),
        backtest=results[(results["segment"] == segment)].iloc[0],
        horizon=horizon,
        verdict=decision,
        table=table,
        data_version=data_version,
    )


def _evaluation_row(
    ctx: RunContext,
    cfg: ValidateConfig,
    registry: SegmentRegistry,
    segment: str,
    version: str,
    run_id: str,
    *,
    champion_version: str | None,
    figures: tuple[Accuracy | None, Accuracy | None, Accuracy | None],
    backtest: pd.Series,
    horizon: int,
    verdict: GateDecision,
    table: str,
    data_version: int,
) -> dict[str, object]:
    """One row of the evaluation table; ``figures`` are candidate, champion and naive."""
    candidate, champion, naive = figures
    return {
        "evaluation_id": str(uuid.uuid4()),
        "evaluated_at": ctx.clock(),
        "segment": segment,
        "model_name": registry.name(segment),
        "candidate_version": version,
        "candidate_run_id": run_id,
        "champion_version": champion_version,
        **_metric_columns("candidate", candidate),
        **_metric_columns("champion", champion),
        **_metric_columns("naive", naive),
        "pairs": candidate.pairs if candidate else 0,
        "backtest_origins": cfg.backtest_origins,
        "first_origin": _date_or_none(backtest["first_origin"]),
        "last_origin": _date_or_none(backtest["last_origin"]),
        "horizon": horizon,
        "mase_tolerance": cfg.rule.mase_tolerance,
        "passed": verdict.passed,
        "reasons": verdict.text,
        "training_table": table,
        "data_version": data_version,
        "target": ctx.target,
        "job_run_id": cfg.job_run_id,
    }


def _figures(candidate: Accuracy | None, naive: Accuracy | None, data_version: int) -> str:
    """The version's backtest figures as one tag value (one registry call, not three)."""

    def mase(value: Accuracy | None) -> float | None:
        return round(value.mase, 4) if value is not None and math.isfinite(value.mase) else None

    return json.dumps(
        {"mase": mase(candidate), "naive_mase": mase(naive), "data_version": data_version},
        sort_keys=True,
    )


def _metric_columns(prefix: str, value: Accuracy | None) -> dict[str, float | None]:
    if value is None:
        return {f"{prefix}_mase": None, f"{prefix}_wape": None, f"{prefix}_bias": None}
    return {
        f"{prefix}_mase": value.mase,
        f"{prefix}_wape": value.wape,
        f"{prefix}_bias": value.bias,
    }


def _description(
    contest: Contest,
    decision: GateDecision,
    candidate: Accuracy | None,
    naive: Accuracy | None,
    champion: Accuracy | None,
    table: str,
    data_version: int,
) -> str:
    verdict = "PASSED validation" if decision.passed else "REFUSED by validation"
    figures = ", ".join(
        f"{label} MASE {value.mase:.3f} WAPE {value.wape:.2%} bias {value.bias:+.2%}"
        for label, value in (
            ("candidate", candidate),
            ("champion", champion),
            ("seasonal naive", naive),
        )
        if value is not None
    )
    return (
        f"{verdict} on {table} version {data_version}: {decision.text}. Backtest: "
        f"{figures}. Training run {contest.candidate_run_id}."
    )


def write_evaluations(ctx: RunContext, rows: list[dict[str, object]]) -> None:
    """MERGE evaluation rows into the evaluation table on (segment, version, data version)."""
    if not rows:
        return
    table = ctx.table(names.EVALUATIONS)
    frame = rows_frame(ctx.spark, pd.DataFrame(rows), EVALUATION_SCHEMA)
    if not ctx.tables.exists(table):
        ctx.tables.write(frame, table, mode="append")
        return
    condition = " AND ".join(f"t.{k} <=> s.{k}" for k in EVALUATION_KEY)
    (
        ctx.tables.delta_table(table)
        .alias("t")
        .merge(frame.alias("s"), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The validate_models task's own options (bundle variables)."""
    parser.add_argument(
        "--segments",
        default="all",
        help="all, a comma list or a JSON list (default: the train task's "
        "candidates when run in a job)",
    )
    add_model_prefix_option(parser)
    parser.add_argument(
        "--backtest-origins",
        type=int,
        default=6,
        help="K: rolling origins of the backtest (bundle var backtest_origins)",
    )
    parser.add_argument(
        "--mase-tolerance",
        type=float,
        default=0.02,
        help="relative MASE by which a candidate may trail the champion "
        "(bundle var mase_tolerance)",
    )
    parser.add_argument(
        "--only-train-candidates",
        default="false",
        help="true: validate only the train task's published candidates, and nothing when it "
        "published none (a job that validates after a failed train)",
    )


def make_config(args: argparse.Namespace) -> ValidateConfig:
    """Typed config from the parsed options."""
    try:
        segments = parse_segments(args.segments)
    except SegmentSelectionError as exc:
        raise ValueError(str(exc)) from exc
    flag = str(args.only_train_candidates).strip().lower()
    if flag not in ("true", "false"):
        raise ValueError(
            f"--only-train-candidates {args.only_train_candidates!r}: say true or false"
        )
    return ValidateConfig(
        segments=segments,
        model_prefix=args.model_prefix,
        backtest_origins=args.backtest_origins,
        rule=GateRule(mase_tolerance=args.mase_tolerance),
        job_run_id=args.job_run_id,
        only_train_candidates=flag == "true",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-validate-models``."""
    run_task(
        TASK_KEY,
        "Backtest each candidate against its champion and seasonal naive; "
        "give passing versions the challenger alias.",
        add_arguments,
        make_config,
        run,
        argv,
    )
