"""Run telemetry: one row per task attempt, and metrics on the job's parent MLflow run."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from demand_forecasting import names
from demand_forecasting.monitoring import telemetry
from demand_forecasting.monitoring.job_run import JOB_RUN_ID_TAG, find_job_run, job_parent_run
from demand_forecasting.monitoring.monitor import job_run_telemetry
from demand_forecasting.monitoring.telemetry import (
    TaskRecorder,
    record_rows,
    record_segment_seconds,
    rows_of,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.mlflow_setup import ensure_experiment
from demand_forecasting.task import run_task

EXPERIMENT = "/Shared/telemetry-test"


class Summary:
    rows_in = 10
    rows_out = 4


def test_rows_come_from_attributes_or_keys() -> None:
    assert rows_of(Summary()) == (10, 4)
    assert rows_of({"rows_in": 3}) == (3, None)
    assert rows_of(object()) == (None, None)


def test_a_task_is_recorded_in_the_table_and_on_the_parent_run(ctx: RunContext) -> None:
    with TaskRecorder("score", "dev", job_run_id="77", experiment=EXPERIMENT) as recorder:
        recorder.bind(ctx)
        record_rows(rows_in=5)
        record_rows(rows_in=2, rows_out=1)

    assert recorder.record is not None
    assert (recorder.record.rows_in, recorder.record.rows_out) == (7, 1)
    assert recorder.record.status == "SUCCESS" and recorder.record.peak_memory_mb > 0
    row = ctx.tables.read(ctx.table(names.TELEMETRY)).collect()[0]
    assert (row["job_run_id"], row["task"], row["status"], row["rows_in"]) == (
        "77",
        "score",
        "SUCCESS",
        7,
    )
    experiment_id = ensure_experiment(ctx.mlflow, EXPERIMENT, None)
    parent = find_job_run(ctx.mlflow, experiment_id, "77")
    assert parent is not None and parent.data.tags[JOB_RUN_ID_TAG] == "77"
    assert set(parent.data.metrics) == {
        "score/duration_s",
        "score/peak_memory_mb",
        "score/rows_in",
        "score/rows_out",
    }
    # Every task of the job run finds the same parent run.
    assert job_parent_run(ctx.mlflow, EXPERIMENT, "77", target="dev") == parent.info.run_id


def test_a_failing_task_is_recorded_as_failed_and_still_raises(ctx: RunContext) -> None:
    def fail(_ctx: RunContext, _config: object) -> None:
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"), TaskRecorder("train", "dev") as recorder:
        recorder.bind(ctx)
        fail(ctx, None)
    assert recorder.record is not None and recorder.record.status == "FAILED"
    assert recorder.record.error == "ValueError: disk full"
    rows = ctx.tables.read(ctx.table(names.TELEMETRY)).collect()
    assert [(r["task"], r["status"], r["job_run_id"]) for r in rows] == [("train", "FAILED", None)]


def test_run_task_records_the_summary_rows(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("demand_forecasting.task.build_context", lambda *a, **k: ctx)

    def add(_parser: argparse.ArgumentParser) -> None:
        pass

    run_task(
        "probe",
        "a probe task",
        add,
        lambda args: args,
        lambda c, cfg: Summary(),
        ["--catalog", "main", "--schema", "demand_forecasting", "--job-run-id", "9"],
    )
    row = ctx.tables.read(ctx.table(names.TELEMETRY)).collect()[0]
    assert (row["task"], row["job_run_id"], row["rows_in"], row["rows_out"]) == (
        "probe",
        "9",
        10,
        4,
    )


def test_a_batch_writes_its_tasks_rows_in_one_commit(ctx: RunContext) -> None:
    table = ctx.table(names.TELEMETRY)
    with telemetry.batch():
        for task in ("ingest", "score"):
            with TaskRecorder(task, "dev", job_run_id="5") as recorder:
                recorder.bind(ctx)
        assert not ctx.tables.exists(table)  # held until the batch ends or is flushed
        # A nested batch adds to the outer one.
        with telemetry.batch(), TaskRecorder("train", "dev", job_run_id="5") as recorder:
            recorder.bind(ctx)
        assert not ctx.tables.exists(table)
        telemetry.flush()  # what a reader of the table does first
        assert ctx.tables.version(table) == 0
        with TaskRecorder("monitor", "dev", job_run_id="5") as recorder:
            recorder.bind(ctx)
    assert ctx.tables.version(table) == 1
    rows = ctx.tables.read(table).orderBy("started_at").collect()
    assert [r["task"] for r in rows] == ["ingest", "score", "train", "monitor"]
    # Outside a batch every row is written when its task ends.
    with TaskRecorder("deploy", "dev") as recorder:
        recorder.bind(ctx)
    assert ctx.tables.version(table) == 2


def test_the_report_reads_a_job_runs_rows_from_the_table_and_the_batch_without_a_commit(
    ctx: RunContext,
) -> None:
    table = ctx.table(names.TELEMETRY)
    with telemetry.batch():
        for task, job_run in (("ingest", "8"), ("other job's task", "9")):
            with TaskRecorder(task, "dev", job_run_id=job_run) as recorder:
                recorder.bind(ctx)
                record_rows(rows_in=148)
        telemetry.flush()  # ingest's row in the table, as after an earlier flush
        for task in ("check_drift", "score"):
            with TaskRecorder(task, "dev", job_run_id="8") as recorder:
                recorder.bind(ctx)
        assert [r.task for r in telemetry.held(ctx, "8")] == ["check_drift", "score"]
        assert telemetry.held(ctx, "9") == []

        rows = job_run_telemetry(ctx, "8")

        assert ctx.tables.version(table) == 0  # reading added no commit
    assert rows["task"].tolist() == ["ingest", "check_drift", "score"]
    assert list(rows.columns) == [
        "task",
        "status",
        "duration_s",
        "rows_in",
        "rows_out",
        "peak_memory_mb",
        "error",
        "segment_seconds",
    ]
    assert rows["rows_in"].iloc[0] == 148 and rows["rows_in"].iloc[1:].isna().all()
    assert telemetry.held(ctx, "8") == []  # the batch wrote them when it ended
    assert job_run_telemetry(ctx, "8")["task"].tolist() == rows["task"].tolist()
    assert job_run_telemetry(ctx, None).empty


def test_segment_seconds_reach_a_table_written_before_the_column_existed(
    ctx: RunContext,
) -> None:
    table = ctx.table(names.TELEMETRY)
    # A run_telemetry table as an earlier release wrote it (no segment_seconds).
    old_schema = telemetry.TELEMETRY_SCHEMA.rsplit(", segment_seconds", 1)[0]
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    old_row = ("6", "ingest", "dev", at, at, 1.5, 1, 1, 10.0, "SUCCESS", None)
    ctx.tables.write(ctx.spark.createDataFrame([old_row], old_schema), table)
    assert list(job_run_telemetry(ctx, "6")["segment_seconds"]) == [None]

    with TaskRecorder("score", "dev", job_run_id="6") as recorder:
        recorder.bind(ctx)
        record_segment_seconds({"alpha": 0.5, "beta": 1.0})
        record_segment_seconds({"alpha": 0.25})

    assert recorder.record is not None
    assert recorder.record.segment_seconds == {"alpha": 0.75, "beta": 1.0}
    rows = job_run_telemetry(ctx, "6")
    assert rows["task"].tolist() == ["ingest", "score"]
    assert rows["segment_seconds"].iloc[0] is None
    assert dict(rows["segment_seconds"].iloc[1]) == {"alpha": 0.75, "beta": 1.0}
    # Outside a recorded task it does nothing.
    record_segment_seconds({"alpha": 9.0})
