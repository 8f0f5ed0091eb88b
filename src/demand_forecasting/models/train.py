"""Task ``train``: one forecaster per segment, fitted in parallel on Spark, logged and registered.

1. Read ``segment, series_id, month, y`` of the gold feature table at its current Delta
   version, for the segments asked (``--segments all|a,b|["a","b"]``, or
   ``from-check-drift``: the segments this job run's check_drift handed over).
2. Skip segments whose newest model version was trained on the same data, recipe and code
   (tag ``training_identity``): a rerun of the month registers nothing twice.
3. Fit the others with ``groupBy("segment").applyInPandas`` (one model per task, one thread
   per model), each returning its booster, state, metrics, importance, plot, example and
   its rolling-origin backtest against seasonal naive (validate_models' evidence).
4. On the driver, per segment: a child run (params, metrics, plot, importance, dataset
   lineage) under one parent run, the model logged as a pyfunc with explicit requirements,
   signature and input example, and registered as a new version with its provenance tags.
5. Hand ``candidates`` (``{segment: version}``) over to validate_models (the job run's
   hand-over table). A segment that failed is named; the task fails at the end if any did,
   after registering the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from demand_forecasting.data.config import load_dataset_config
from demand_forecasting.models.recipe import Recipe, default_recipe
from demand_forecasting.models.registry import (
    SegmentRegistry,
    add_model_prefix_option,
    read_each_segment,
)
from demand_forecasting.models.segment_data import (
    SegmentSelectionError,
    apply_per_segment,
    parse_segments,
    read_history,
    segment_hashes,
)
from demand_forecasting.models.segment_training import OK, RESULT_SCHEMA, segment_trainer
from demand_forecasting.models.tracking import TrainingLogger
from demand_forecasting.monitoring.check_drift import SEGMENTS_TO_TRAIN
from demand_forecasting.monitoring.check_drift import TASK_KEY as DRIFT_TASK
from demand_forecasting.monitoring.telemetry import record_rows, record_segment_seconds
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.mlflow_setup import warm_up_model_logging
from demand_forecasting.task import run_task

log = logging.getLogger(__name__)

TASK_KEY = "train"
CANDIDATES_KEY = "candidates"
#: ``--segments`` value: the segments this job run's check_drift handed over.
FROM_CHECK_DRIFT = "from-check-drift"


#: Failed segments whose error the train task's error message shows (it names them all).
ERRORS_SHOWN = 3


class SegmentTrainingError(RuntimeError):
    """One or more segments failed to train (the others were registered)."""


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of the train task.

    Attributes:
        segments: segments to train (None: every segment of the feature table).
        recipe: how each segment's model is fitted (horizon from the bundle).
        model_prefix: registered models are ``<catalog>.<schema>.<prefix>_<segment>``.
        experiment: MLflow experiment of the training runs.
        git_commit: commit of the deployed bundle (a version tag).
        job_run_id: the job run, to nest the training run under the job's parent run.
        parallel: fit on Spark (False: a plain loop on the driver, for benchmarks).
        backtest_origins: K, the rolling origins each candidate is backtested on.
        from_check_drift: train the segments this job run's check_drift handed over
            (``segments`` is then ignored).
        dataset: the dataset config's name: a tag of every training run and part of its
            name, so that datasets sharing the experiment tell apart in MLflow.
    """

    segments: tuple[str, ...] | None
    recipe: Recipe
    model_prefix: str
    experiment: str
    git_commit: str = "unknown"
    job_run_id: str | None = None
    parallel: bool = True
    backtest_origins: int = 6
    from_check_drift: bool = False
    dataset: str = "aus_retail"

    def __post_init__(self) -> None:
        if self.backtest_origins < 1:
            raise ValueError(
                f"--backtest-origins {self.backtest_origins}: at least 1 "
                "(bundle variable backtest_origins)"
            )
        if self.from_check_drift and self.job_run_id is None:
            raise ValueError(
                f"--segments {FROM_CHECK_DRIFT} reads what check_drift handed over in a job "
                "run: pass --job-run-id, or name the segments (all, a comma list)"
            )
        if not self.model_prefix or not self.model_prefix.replace("_", "").isalnum():
            raise ValueError(
                f"--model-prefix {self.model_prefix!r}: use letters, digits and "
                "'_' (it becomes part of Unity Catalog model names)"
            )
        if not self.experiment:
            raise ValueError(
                "--experiment is empty: pass the MLflow experiment path (bundle: "
                "${resources.experiments.demand_forecasting.name})"
            )


@dataclass
class TrainSummary:
    """What a training run did (``rows_in``/``rows_out`` feed the telemetry table)."""

    candidates: dict[str, str] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    fit_seconds: float = 0.0
    log_seconds: dict[str, float] = field(default_factory=dict)
    parent_run_id: str | None = None


def training_identity(data_hash: str, recipe: Recipe, git_commit: str) -> str:
    """What makes two trainings the same: data, recipe and code."""
    return f"{data_hash[:16]}-{recipe.fingerprint()}-{git_commit[:12]}"


def fit_segments(
    frame: object, recipe: Recipe, segments: int, parallel: bool, origins: int = 6
) -> pd.DataFrame:
    """Fit and backtest every segment of ``frame`` (a Spark DataFrame of history rows).

    Args:
        frame: ``segment, series_id, month, y`` rows.
        recipe: how to fit.
        segments: number of segments (one Spark task each).
        parallel: on Spark executors (True) or in a loop on the driver (False).
        origins: backtest origins K.
    """
    trainer = segment_trainer(recipe.to_json(), origins)
    if parallel:
        return apply_per_segment(frame, trainer, RESULT_SCHEMA, segments)  # type: ignore[arg-type]
    rows = frame.toPandas()  # type: ignore[attr-defined]
    results = [trainer(group) for _, group in rows.groupby("segment", sort=True)]
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame()


def segments_from_check_drift(ctx: RunContext) -> tuple[str, ...]:
    """The segments this job run's check_drift handed over to retrain.

    Raises:
        LookupError: check_drift handed nothing over in this job run.
    """
    segments = ctx.handover.read(DRIFT_TASK, SEGMENTS_TO_TRAIN, None)
    if segments is None:
        raise LookupError(
            f"train --segments {FROM_CHECK_DRIFT}: check_drift handed no {SEGMENTS_TO_TRAIN} "
            f"over in job run {ctx.handover.job_run_id} ({ctx.handover.table}): run the "
            "monthly job from check_drift, or name the segments (--segments all|a,b)"
        )
    log.info("train: %d segment(s) handed over by check_drift", len(segments))
    return tuple(str(s) for s in segments)


def run(ctx: RunContext, cfg: TrainConfig) -> TrainSummary:
    """Train, log and register the segments of ``cfg``; hand the candidates over.

    Raises:
        SegmentTrainingError: some segments failed (named, with their errors); the others
            were registered and handed over first.
        LookupError: ``from_check_drift`` and check_drift handed nothing over.
    """
    segments = segments_from_check_drift(ctx) if cfg.from_check_drift else cfg.segments
    if segments == ():
        log.info("train: no segment to retrain in this run; nothing trained")
        ctx.handover.publish(TASK_KEY, {CANDIDATES_KEY: {}})
        return TrainSummary()
    history = read_history(ctx, segments, covariates=cfg.recipe.covariates)
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, cfg.model_prefix)
    summary = TrainSummary()
    hashes = segment_hashes(history.frame)
    identities = {s: training_identity(h, cfg.recipe, cfg.git_commit) for s, h in hashes.items()}
    to_train = []
    reusable = read_each_segment(
        history.segments,
        lambda segment: registry.find_by_tag(segment, "training_identity", identities[segment]),
    )
    for segment, existing in reusable.items():
        if existing is not None:
            summary.reused[segment] = str(existing.version)
        else:
            to_train.append(segment)
    if summary.reused:
        log.info(
            "%d segment(s) already trained on this data, recipe and commit; reusing their "
            "versions: %s",
            len(summary.reused),
            ", ".join(f"{s} v{v}" for s, v in sorted(summary.reused.items())),
        )
    summary.candidates.update(summary.reused)

    if to_train:
        from pyspark.sql import functions as F

        frame = history.frame.where(F.col("segment").isin(to_train))
        summary.rows_in = frame.count()
        started = time.perf_counter()
        warm_up = warm_up_model_logging()  # while the driver waits for the fit
        results = fit_segments(frame, cfg.recipe, len(to_train), cfg.parallel, cfg.backtest_origins)
        summary.fit_seconds = time.perf_counter() - started
        warm_up.join()
        log.info(
            "fitted %d segment(s) in %.1fs (%s)",
            len(results),
            summary.fit_seconds,
            "Spark applyInPandas" if cfg.parallel else "sequential loop",
        )
        logger = TrainingLogger(ctx, cfg, history.table, history.version)
        summary.parent_run_id = logger.start(len(to_train))
        with tempfile.TemporaryDirectory(prefix="train-") as scratch:
            for row in results.sort_values("segment").to_dict("records"):
                segment = str(row["segment"])
                if row["status"] != OK:
                    summary.failed[segment] = str(row["error"])
                    log.error("segment %s failed to train: %s", segment, row["error"])
                    continue
                try:
                    registry.ensure_model(segment)
                    logged = logger.log_segment(
                        {str(k): v for k, v in row.items()},
                        registry.name(segment),
                        hashes[segment],
                        identities[segment],
                        Path(scratch) / segment,
                    )
                except Exception as exc:  # the others still get logged and registered
                    summary.failed[segment] = f"logging/registration failed: {exc}"
                    log.exception("segment %s could not be logged or registered", segment)
                    continue
                summary.candidates[segment] = logged.version
                summary.log_seconds[segment] = logged.seconds
        logger.finish(summary.candidates, summary.failed, summary.fit_seconds)
        # Each segment's own work (its fit on a worker, its logging here), for its cost.
        record_segment_seconds(
            {
                str(row["segment"]): float(row["fit_seconds"] or 0.0)
                + summary.log_seconds.get(str(row["segment"]), 0.0)
                for row in results[["segment", "fit_seconds"]].to_dict("records")
            }
        )

    summary.rows_out = len(summary.candidates) - len(summary.reused)
    record_rows(rows_in=summary.rows_in, rows_out=summary.rows_out)
    ctx.handover.publish(TASK_KEY, {CANDIDATES_KEY: summary.candidates})
    if summary.log_seconds:
        seconds = list(summary.log_seconds.values())
        log.info(
            "logged and registered %d model(s): %.2fs per model on average (max %.2fs)",
            len(seconds),
            sum(seconds) / len(seconds),
            max(seconds),
        )
    if summary.failed:
        raise SegmentTrainingError(
            failure_message(summary.failed, len(history.segments), len(summary.candidates))
        )
    return summary


def failure_message(failed: Mapping[str, str], segments: int, registered: int) -> str:
    """The train task's error: every failed segment by name, the first
    :data:`ERRORS_SHOWN` with their error's last line.

    The runner, the job's summary and the task's own log each print this message, so it
    stays short however many segments fail (all 23 of PBS's once failed alike: ~7 KB, three
    times); each full error is in the task's log once, where it happened.
    """
    ordered = sorted(failed.items())
    shown = "; ".join(f"{s}: {e.strip().splitlines()[-1][:300]}" for s, e in ordered[:ERRORS_SHOWN])
    more = len(ordered) - ERRORS_SHOWN
    rest = (
        f"; and {more} more (each segment's full error is in the train task's log above: "
        "'segment <name> failed to train' or 'could not be logged or registered')"
        if more > 0
        else ""
    )
    return (
        f"{len(ordered)} of {segments} segment(s) failed to train (the other {registered} are "
        f"registered): {shown}{rest}. Fix the data or recipe and rerun with --segments "
        f"{','.join(s for s, _ in ordered)} (done segments are reused)."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The train task's own options (bundle variables)."""
    parser.add_argument(
        "--segments",
        default="all",
        help=f"all, a comma list, a JSON list, or {FROM_CHECK_DRIFT} (the segments this job "
        "run's check_drift handed over)",
    )
    parser.add_argument(
        "--horizon", type=int, default=12, help="months forecast directly (bundle var horizon)"
    )
    add_model_prefix_option(parser)
    parser.add_argument(
        "--experiment", required=True, help="MLflow experiment of the training runs"
    )
    parser.add_argument(
        "--git-commit",
        default="unknown",
        help="commit of the deployed bundle (${bundle.git.commit})",
    )
    parser.add_argument(
        "--recipe",
        default="{}",
        help="JSON overrides of the model recipe, e.g. "
        '\'{"xgb_weight": 0.5, "xgb_params": {"n_estimators": 300}}\'',
    )
    parser.add_argument(
        "--backtest-origins",
        type=int,
        default=6,
        help="K: rolling origins each candidate is backtested on (bundle var backtest_origins)",
    )
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (bundle variable dataset): tags the runs",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="fit segments in a loop on the driver instead of on Spark",
    )


def recipe_from_args(args: argparse.Namespace, covariates: tuple[str, ...] = ()) -> Recipe:
    """The recipe: defaults, the bundle's horizon and the dataset's planned covariates, then
    ``--recipe`` overrides.

    Raises:
        ValueError: ``--recipe`` is not a JSON object of recipe fields.
    """
    try:
        overrides = json.loads(getattr(args, "recipe", "{}") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"--recipe is not valid JSON: {exc.msg}") from exc
    if not isinstance(overrides, dict):
        raise ValueError("--recipe must be a JSON object of recipe fields")
    try:
        return default_recipe(args.horizon, covariates).with_overrides(**overrides)
    except TypeError as exc:
        raise ValueError(
            f"--recipe has an unknown field ({exc}); fields: horizon, "
            "train_window_months, recency_halflife_months, xgb_weight, theta_weight, "
            "xgb_params, covariates"
        ) from exc


def make_config(args: argparse.Namespace) -> TrainConfig:
    """Typed config from the parsed options."""
    from_check_drift = str(args.segments).strip().lower() == FROM_CHECK_DRIFT
    try:
        segments = None if from_check_drift else parse_segments(args.segments)
    except SegmentSelectionError as exc:
        raise ValueError(str(exc)) from exc
    dataset = load_dataset_config(args.dataset)
    return TrainConfig(
        segments=segments,
        from_check_drift=from_check_drift,
        recipe=recipe_from_args(args, dataset.planned),
        model_prefix=args.model_prefix,
        experiment=args.experiment,
        git_commit=args.git_commit,
        job_run_id=args.job_run_id,
        parallel=not args.sequential,
        backtest_origins=args.backtest_origins,
        dataset=dataset.name,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-train``."""
    run_task(
        TASK_KEY,
        "Train one XGBoost + Holt-Winters forecaster per segment on Spark; "
        "log to MLflow and register each as a new model version.",
        add_arguments,
        make_config,
        run,
        argv,
    )
