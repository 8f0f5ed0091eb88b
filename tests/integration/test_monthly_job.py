"""The whole monthly job on real data (Tasmania, three segments), run by the local runner.

One state folder for the module, months in order: the first month trains every segment; a
planted shift in one segment retrains exactly that segment; rerunning the month changes no
table contents; a job killed mid-training and run again completes the month with no
duplicate or missing rows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from monthly_support import (
    CONDITIONAL_TABLES,
    assert_documented_columns,
    documented_columns,
    handed_over,
    land_tiny_history,
    plant_shift,
)

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.landing import land
from demand_forecasting.models import train
from demand_forecasting.models.registry import CHAMPION, VALIDATION_STATUS, SegmentRegistry
from demand_forecasting.monitoring import drift
from demand_forecasting.monitoring.champions import find_champions
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.runner.entry_points import EntryPoint, resolve_entry_point
from demand_forecasting.runner.executor import run_job
from demand_forecasting.runner.results import JobResultState, JobRunResult, TaskResult, TaskStatus

#: The drift table's columns naming the job run that decided a row and when (docs/tables.md).
DECIDED_BY = ("decided_by_job_run", "decided_at")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CATALOG, SCHEMA, PREFIX = "dev", "demand_forecasting", "demand"
FOOD = "tasmania__food_retailing"
HOUSEHOLD = "tasmania__household_goods_retailing"
OTHER = "tasmania__other_retailing"
SEGMENTS = (FOOD, HOUSEHOLD, OTHER)


@dataclass
class Monthly:
    """The module's state folder, dataset and landing folder."""

    state: Path
    dataset: Path
    config: DatasetConfig
    landing: Path

    def run(self, resolver=resolve_entry_point) -> JobRunResult:  # type: ignore[no-untyped-def]
        return run_job(
            ROOT,
            "monthly",
            target="dev",
            variables={"dataset": str(self.dataset)},
            resolver=resolver,
            runs_dir=self.state / "runs",
        )

    def ctx(self) -> RunContext:
        return build_context("dev", CATALOG, SCHEMA, state_dir=self.state)

    def handed_over(self, run: JobRunResult, task_key: str, key: str) -> Any:
        return handed_over(self.state, CATALOG, SCHEMA, run, task_key, key)

    def next_month(self, shifts: dict[str, float]) -> None:
        land(self.config, self.landing, next_month=True)
        for segment, factor in shifts.items():
            plant_shift(self.landing, self.config, segment, factor, months=12)


def task(run: JobRunResult, key: str) -> TaskResult:
    return next(t for t in run.tasks if t.task_key == key)


def without_champion(ctx: RunContext) -> set[str]:
    registry = SegmentRegistry(ctx.mlflow, CATALOG, SCHEMA, PREFIX)
    return set(SEGMENTS) - set(registry.segments_with(SEGMENTS, CHAMPION))


def fallbacks(ctx: RunContext) -> set[str]:
    """Segments whose champion is the seasonal-naive fallback (their candidate was refused)."""
    found = find_champions(ctx.mlflow, CATALOG, SCHEMA, PREFIX, SEGMENTS)
    return {s for s, champion in found.items() if champion.fallback}


def contents(ctx: RunContext, name: str) -> list[tuple[object, ...]]:
    """A table's rows; the drift table's but for the job run and time that decided each (a
    rerun of the month decides the segments it does not keep again, and says so)."""
    full = ctx.table(name)
    if not ctx.tables.exists(full):
        return []
    frame = ctx.tables.read(full)
    if name == names.DRIFT:
        frame = frame.drop(*DECIDED_BY)
    return sorted((tuple(r) for r in frame.collect()), key=repr)


def model_versions(ctx: RunContext) -> dict[str, list[str]]:
    registry = SegmentRegistry(ctx.mlflow, CATALOG, SCHEMA, PREFIX)
    return {s: sorted(v.version for v in registry.versions(s)) for s in SEGMENTS}


@pytest.fixture(scope="module")
def monthly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monthly]:
    """History to 2015-12 (from 2006) landed and the first month's job run."""
    state = tmp_path_factory.mktemp("monthly") / "state"
    patch = pytest.MonkeyPatch()
    patch.setenv("DEMAND_FORECASTING_HOME", str(state))
    dataset, config, landing = land_tiny_history(state, CATALOG, SCHEMA)
    yield Monthly(state, dataset, config, landing)
    patch.undo()


@pytest.fixture(scope="module")
def first_run(monthly: Monthly) -> JobRunResult:
    return monthly.run()


def test_the_first_month_trains_every_segment_and_forecasts_every_segment(
    monthly: Monthly, first_run: JobRunResult
) -> None:
    assert first_run.state is JobResultState.SUCCESS, [
        (t.task_key, t.status, t.error) for t in first_run.tasks
    ]
    assert task(first_run, "check_drift").values == {"retrain_count": 3, "run_month": "2015-12"}
    assert monthly.handed_over(first_run, "check_drift", "segments_to_train") == sorted(SEGMENTS)
    assert task(first_run, "retrain_needed").outcome == "true"
    assert set(monthly.handed_over(first_run, "train", "candidates")) == set(SEGMENTS)
    # Task values are small scalars only: lists of segments go through the hand-over table.
    for result in first_run.tasks:
        assert all(isinstance(v, int | str) for v in result.values.values()), result.values
    ctx = monthly.ctx()
    forecast = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()
    # A refused candidate leaves its segment the seasonal-naive fallback, never nothing.
    assert without_champion(ctx) == set()
    assert set(forecast["segment"]) == set(SEGMENTS)
    assert set(monthly.handed_over(first_run, "validate_models", "challengers")) == set(SEGMENTS)
    assert task(first_run, "score").values["series_forecast"] == forecast["series_id"].nunique()
    assert (monthly.state / "reports" / "2015-12" / "report.md").is_file()
    telemetry = ctx.tables.read(ctx.table(names.TELEMETRY)).toPandas()
    run_rows = telemetry[telemetry["job_run_id"] == str(first_run.run_id)]
    assert {"ingest", "check_drift", "train", "score"} <= set(run_rows["task"])
    # Every model is priced, by its own work where the task measured it; the models' costs
    # add up to the priced time of the run's tasks before monitor.
    costs = ctx.tables.read(ctx.table(names.MODEL_COSTS)).toPandas()
    costs = costs[costs["job_run_id"] == str(first_run.run_id)]
    assert set(costs["segment"]) == set(SEGMENTS)
    measured = costs[costs["basis"] == "measured"]
    assert set(measured["task"]) == {"train", "validate_models", "score"}
    before_monitor = run_rows[run_rows["task"] != "monitor"]["duration_s"].sum()
    price = costs["cost_per_hour"].iloc[0]
    assert costs["cost"].sum() == pytest.approx(before_monitor / 3600 * price)


def test_every_documented_table_has_exactly_the_documented_columns(
    monthly: Monthly, first_run: JobRunResult
) -> None:
    ctx = monthly.ctx()
    documented = documented_columns()
    assert {names.FORECASTS, names.ACCURACY, names.AUDIT, names.MODEL_COSTS} <= set(documented)
    assert set(CONDITIONAL_TABLES) <= set(documented)
    for table in documented:
        if table in CONDITIONAL_TABLES:
            # Documented as made only by a dataset with `planned` / a target with
            # require_approval: their columns are checked where they are made.
            assert not ctx.tables.exists(ctx.table(table)), f"{table} made without its reason"
            continue
        assert_documented_columns(ctx, table)


def test_every_forecast_of_a_newly_trained_model_has_its_interval(
    monthly: Monthly, first_run: JobRunResult
) -> None:
    ctx = monthly.ctx()
    forecast = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()

    assert forecast[["forecast_lower", "forecast_upper"]].notna().all().all()
    assert (forecast["forecast_lower"] <= forecast["forecast"]).all()
    assert (forecast["forecast"] <= forecast["forecast_upper"]).all()


def test_a_planted_shift_retrains_exactly_that_segment(
    monthly: Monthly, first_run: JobRunResult
) -> None:
    waiting = fallbacks(monthly.ctx())  # refused a month ago: not retried yet
    assert FOOD not in waiting, "the planted segment's model passed the gate in month one"
    monthly.next_month({FOOD: 1.8})

    run = monthly.run()

    assert run.state is JobResultState.SUCCESS, [(t.task_key, t.status, t.error) for t in run.tasks]
    chosen = monthly.handed_over(run, "check_drift", "segments_to_train")
    assert chosen == [FOOD]
    assert set(monthly.handed_over(run, "train", "candidates")) == set(chosen)
    ctx = monthly.ctx()
    rows = ctx.tables.read(ctx.table(names.DRIFT)).where("run_month = DATE'2016-01-01'")
    decisions = {r["segment"]: r["decision"] for r in rows.collect()}
    assert decisions[FOOD] == drift.RETRAIN_DRIFT
    for segment in set(SEGMENTS) - {FOOD}:
        expected = drift.WAIT_REFUSED if segment in waiting else drift.KEEP
        assert decisions[segment] == expected, segment
    assert task(run, "score").status is TaskStatus.SUCCESS


def test_rerunning_a_month_changes_no_contents(monthly: Monthly) -> None:
    ctx = monthly.ctx()
    tables = (names.FORECASTS, names.DRIFT, names.ACCURACY, names.FEATURES, names.EVALUATIONS)
    before = {t: contents(ctx, t) for t in tables}
    versions = model_versions(ctx)
    drift_rows = ctx.tables.read(ctx.table(names.DRIFT)).where("run_month = DATE'2016-01-01'")
    shift_run = {r["decided_by_job_run"] for r in drift_rows.where(f"segment = '{FOOD}'").collect()}

    run = monthly.run()

    assert run.state is JobResultState.SUCCESS
    assert task(run, "retrain_needed").outcome == "false"
    assert task(run, "train").status is TaskStatus.EXCLUDED
    assert task(run, "score").status is TaskStatus.SUCCESS
    ctx = monthly.ctx()
    assert {t: contents(ctx, t) for t in tables} == before
    assert model_versions(ctx) == versions
    # The report shows the month's decision to retrain FOOD as the first run's, and what the
    # rerun did: nothing (it showed that decision as the rerun's own).
    (first,) = shift_run
    assert first is not None and first != str(run.run_id)
    report = (monthly.state / "reports" / "2016-01" / "report.md").read_text()
    section = report[report.index("## Retraining decisions") : report.index("## Drift")]
    assert f"**This job run (`{run.run_id}`) is a rerun of 2016-01.**" in section
    assert f"kept: job run `{first}` at " in section
    assert f"| {FOOD} | {drift.RETRAIN_DRIFT} |" in section and f"| {first} |" in section
    assert "This rerun retrained nothing: the 1 segment(s) the kept decisions sent" in section
    assert "this rerun retrained nothing)." in report[: report.index("## Retraining decisions")]


def crash_after_first_segment() -> object:
    """df-train that trains (and registers) only the first segment check_drift handed over,
    then dies."""
    argv = list(sys.argv)
    job_run_id = argv[argv.index("--job-run-id") + 1]
    ctx = build_context("dev", CATALOG, SCHEMA, job_run_id=job_run_id)  # $DEMAND_FORECASTING_HOME
    handed = ctx.handover.read("check_drift", "segments_to_train")
    at = argv.index("--segments") + 1
    assert argv[at] == train.FROM_CHECK_DRIFT
    argv[at] = json.dumps(handed[:1])
    train.main(argv[1:])
    raise RuntimeError("killed after registering the first segment")


def crashing_resolver(package: str, entry_point: str) -> EntryPoint:
    if entry_point == "df-train":
        return crash_after_first_segment
    return resolve_entry_point(package, entry_point)


def test_a_job_killed_mid_training_completes_on_rerun_without_duplicates(
    monthly: Monthly,
) -> None:
    monthly.next_month({HOUSEHOLD: 0.5, OTHER: 1.6})
    before = model_versions(monthly.ctx())

    killed = monthly.run(resolver=crashing_resolver)

    # The segment registered before the kill is validated, deployed and scored with the
    # others' champions; monitor then fails the run, so that the kill is alerted.
    assert killed.state is JobResultState.FAILED
    assert task(killed, "train").status is TaskStatus.FAILED
    assert task(killed, "score").status is TaskStatus.SUCCESS
    monitor_task = task(killed, "monitor")
    assert monitor_task.status is TaskStatus.FAILED
    assert "train: result state failed" in str(monitor_task.error)
    chosen = monthly.handed_over(killed, "check_drift", "segments_to_train")
    assert {HOUSEHOLD, OTHER} <= set(chosen)
    scored = monthly.ctx().tables.read(monthly.ctx().table(names.FORECASTS)).toPandas()
    assert set(scored.loc[scored["run_month"] == date(2016, 2, 1), "segment"]) == set(SEGMENTS)

    # A segment the killed run registered and validation refused keeps its champion this
    # month: the rerun does not train it again (wait_refused); the others are trained.
    registry = SegmentRegistry(monthly.ctx().mlflow, CATALOG, SCHEMA, PREFIX)
    refused = {
        s
        for s in chosen
        for v in registry.versions(s)
        if v.version not in before[s] and (v.tags or {}).get(VALIDATION_STATUS) == "refused"
    }

    rerun = monthly.run()

    assert rerun.state is JobResultState.SUCCESS
    assert monthly.handed_over(rerun, "check_drift", "segments_to_train") == [
        s for s in chosen if s not in refused
    ]
    ctx = monthly.ctx()
    after = model_versions(ctx)
    for segment in chosen:  # one new version each: the killed run's one was reused
        assert len(after[segment]) == len(before[segment]) + 1, (segment, before, after)
    month = date(2016, 2, 1)
    forecast = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()
    forecast = forecast[forecast["run_month"] == month]
    assert not forecast.duplicated(["series_id", "horizon"]).any()
    per_series = forecast.groupby("series_id")["horizon"].nunique()
    assert per_series.min() == per_series.max() == forecast["horizon"].max()
    assert set(forecast["segment"]) == set(SEGMENTS)
    drift_rows = ctx.tables.read(ctx.table(names.DRIFT)).toPandas()
    assert not drift_rows.duplicated(["run_month", "segment", "feature"]).any()
    accuracy = ctx.tables.read(ctx.table(names.ACCURACY)).toPandas()
    assert not accuracy.duplicated(["segment", "month", "horizon"]).any()
