"""The hand-over table: an estate's lists pass between a job run's tasks whatever their size,
a retry replaces what its attempt published, and another job run sees none of it."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.errors import PySparkException
from pyspark.errors.exceptions import captured

from demand_forecasting import names
from demand_forecasting.models import train
from demand_forecasting.monitoring.check_drift import SEGMENTS_TO_TRAIN
from demand_forecasting.platform import handover as handover_module
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.handover import HANDOVER_SCHEMA, CommitConflictError, HandOver
from demand_forecasting.platform.spark import rows_frame
from demand_forecasting.platform.tables import LocalDeltaTables, is_commit_conflict
from demand_forecasting.platform.task_values import MAX_VALUE_BYTES

#: An estate of 1,500 segments: its lists are far over a task value's 48 KiB.
SEGMENTS = [f"region_{i % 40:02d}__category_of_products_{i:05d}" for i in range(1_500)]


def handover(ctx: RunContext, job_run_id: str | None) -> HandOver:
    """The hand-over of job run ``job_run_id`` in ``ctx``'s schema (as a task builds it)."""
    return HandOver(ctx.tables, ctx.table(names.HANDOVER), job_run_id, ctx.clock)


def rows(ctx: RunContext) -> list[dict[str, Any]]:
    frame = ctx.tables.read(ctx.table(names.HANDOVER))
    return [r.asDict() for r in frame.orderBy("job_run_id", "task", "key").collect()]


def test_an_estate_too_big_for_task_values_passes_through_the_table(ctx: RunContext) -> None:
    candidates = {segment: str(i % 7 + 1) for i, segment in enumerate(SEGMENTS)}
    assert len(json.dumps(SEGMENTS)) > MAX_VALUE_BYTES
    assert len(json.dumps(candidates)) > MAX_VALUE_BYTES
    run = handover(ctx, "7001")

    run.publish("check_drift", {SEGMENTS_TO_TRAIN: SEGMENTS})
    run.publish("train", {train.CANDIDATES_KEY: candidates})
    run.publish("score", {"segments_on_fallback": SEGMENTS[:2], "series_forecast": 3})

    later_task = handover(ctx, "7001")  # another task of the run: another process
    assert later_task.read("check_drift", SEGMENTS_TO_TRAIN) == SEGMENTS
    assert later_task.read("train", train.CANDIDATES_KEY) == candidates
    assert later_task.read("score", "segments_on_fallback") == SEGMENTS[:2]
    assert later_task.read("score", "series_forecast") == 3
    assert later_task.read("validate_models", "challengers") is None
    assert later_task.read("validate_models", "challengers", {}) == {}
    stored = rows(ctx)
    assert [(r["job_run_id"], r["task"], r["key"], r["items"]) for r in stored] == [
        ("7001", "check_drift", SEGMENTS_TO_TRAIN, 1_500),
        ("7001", "score", "segments_on_fallback", 2),
        ("7001", "score", "series_forecast", None),
        ("7001", "train", train.CANDIDATES_KEY, 1_500),
    ]
    assert all(r["published_at"] is not None for r in stored)


def test_a_retry_replaces_its_value_and_another_job_run_sees_none(ctx: RunContext) -> None:
    first = handover(ctx, "7001")
    first.publish("train", {train.CANDIDATES_KEY: {"a": "1", "b": "1"}})
    first.publish("train", {train.CANDIDATES_KEY: {"a": "2"}})  # the task's retry
    handover(ctx, "7002").publish("train", {train.CANDIDATES_KEY: {}})  # next month's run

    assert handover(ctx, "7001").read("train", train.CANDIDATES_KEY) == {"a": "2"}
    assert handover(ctx, "7002").read("train", train.CANDIDATES_KEY) == {}
    assert handover(ctx, "7003").read("train", train.CANDIDATES_KEY) is None
    assert [(r["job_run_id"], r["value"]) for r in rows(ctx)] == [
        ("7001", '{"a": "2"}'),
        ("7002", "{}"),
    ]


def test_without_a_job_run_values_stay_in_memory_and_no_table_is_written(
    ctx: RunContext,
) -> None:
    by_hand = handover(ctx, None)
    by_hand.publish("check_drift", {SEGMENTS_TO_TRAIN: ["a"]})

    assert by_hand.read("check_drift", SEGMENTS_TO_TRAIN) == ["a"]
    assert handover(ctx, None).read("check_drift", SEGMENTS_TO_TRAIN) is None
    assert not ctx.tables.exists(ctx.table(names.HANDOVER))


def test_a_job_run_id_that_is_not_an_id_is_refused(ctx: RunContext) -> None:
    with pytest.raises(ValueError, match=r"--job-run-id \"1' OR '1'='1\" may hold only"):
        handover(ctx, "1' OR '1'='1")


def test_train_takes_the_segments_check_drift_handed_over_in_its_job_run(
    ctx: RunContext,
) -> None:
    ctx.handover = handover(ctx, "7001")
    with pytest.raises(LookupError) as missing:
        train.segments_from_check_drift(ctx)
    assert "check_drift handed no segments_to_train over in job run 7001" in str(missing.value)
    assert "--segments all|a,b" in str(missing.value)

    handover(ctx, "7001").publish("check_drift", {SEGMENTS_TO_TRAIN: SEGMENTS})

    assert train.segments_from_check_drift(ctx) == tuple(SEGMENTS)


def _train_config(*argv: str) -> train.TrainConfig:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    parser.add_argument("--job-run-id", default=None)
    return train.make_config(parser.parse_args(["--experiment", "/x", *argv]))


def test_train_from_check_drift_needs_a_job_run() -> None:
    config = _train_config("--segments", "from-check-drift", "--job-run-id", "7001")
    assert config.from_check_drift and config.segments is None
    assert _train_config("--segments", "a,b").segments == ("a", "b")
    with pytest.raises(ValueError, match="from-check-drift reads what check_drift handed over"):
        _train_config("--segments", "from-check-drift")


def _published_twice_at_once(ctx: RunContext, times: int) -> list[BaseException]:
    """Two threads, as the monthly and the full-retrain job, each publishing ``times`` values
    of its own job run at once; the exceptions they raised."""
    failures: list[BaseException] = []

    def publish(job_run_id: str) -> None:
        run = handover(ctx, job_run_id)
        for i in range(times):
            try:
                run.publish("train", {train.CANDIDATES_KEY: {"a": str(i)}})
            except Exception as exc:  # collected: the test names them
                failures.append(exc)

    threads = [threading.Thread(target=publish, args=(run,)) for run in ("8001", "9001")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_two_job_runs_publishing_at_once_both_commit_without_a_retry(
    ctx: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    # On an unpartitioned table about half of these conflicted (ConcurrentAppendException:
    # each replaceWhere reads the whole table); partitioned by job run, none does.
    handover(ctx, "7001").publish("check_drift", {SEGMENTS_TO_TRAIN: ["a"]})  # the table exists
    caplog.set_level(logging.WARNING, logger="demand_forecasting.platform.handover")

    failures = _published_twice_at_once(ctx, times=8)

    assert failures == []
    assert "lost to a concurrent commit" not in caplog.text
    assert handover(ctx, "8001").read("train", train.CANDIDATES_KEY) == {"a": "7"}
    assert handover(ctx, "9001").read("train", train.CANDIDATES_KEY) == {"a": "7"}
    assert len(rows(ctx)) == 3
    assert ctx.tables.delta_table(ctx.table(names.HANDOVER)).detail().first()[
        "partitionColumns"
    ] == ["job_run_id"]


class ConflictingTables(LocalDeltaTables):
    """Local Delta tables whose first ``conflicts`` writes lose to a concurrent commit: they
    raise what Delta raises then (its ConcurrentAppendException, converted from the JVM as
    PySpark converts a real one) and commit nothing."""

    def __init__(self, tables: LocalDeltaTables, conflicts: int) -> None:
        super().__init__(tables.spark, tables.warehouse)
        self.conflicts = conflicts
        self.attempts = 0

    def write(
        self,
        df: Any,
        name: str,
        mode: str = "append",
        partition_by: Sequence[str] = (),
        **options: Any,
    ) -> None:
        self.attempts += 1
        if self.attempts <= self.conflicts:
            jvm = self.spark._jvm  # type: ignore[attr-defined]
            import delta.exceptions  # noqa: F401 - teaches PySpark Delta's conflict classes

            raise captured.convert_exception(
                jvm.io.delta.exceptions.ConcurrentAppendException(
                    "DELTA_CONCURRENT_APPEND.WITHOUT_HINT"
                )
            )
        super().write(df, name, mode, partition_by, **options)


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handover_module, "RETRY_PAUSE_SECONDS", 0.0)


@pytest.mark.usefixtures("no_pause")
def test_a_publication_that_loses_to_a_concurrent_commit_is_tried_again(
    ctx: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    tables = ConflictingTables(ctx.tables, conflicts=2)  # type: ignore[arg-type]
    run = HandOver(tables, ctx.table(names.HANDOVER), "7001", ctx.clock)
    caplog.set_level(logging.WARNING, logger="demand_forecasting.platform.handover")

    run.publish("train", {train.CANDIDATES_KEY: {"a": "1"}})

    assert tables.attempts == 3
    assert run.read("train", train.CANDIDATES_KEY) == {"a": "1"}
    assert "publish train of job run 7001 lost to a concurrent commit" in caplog.text
    assert "(attempt 2 of 5: DELTA_CONCURRENT_APPEND.WITHOUT_HINT)" in caplog.text


@pytest.mark.usefixtures("no_pause")
def test_a_publication_that_keeps_losing_fails_saying_to_rerun(ctx: RunContext) -> None:
    tables = ConflictingTables(ctx.tables, conflicts=handover_module.COMMIT_ATTEMPTS)  # type: ignore[arg-type]
    run = HandOver(tables, ctx.table(names.HANDOVER), "7001", ctx.clock)

    with pytest.raises(CommitConflictError, match=r"lost to a concurrent commit to .* 5 times"):
        run.publish("train", {train.CANDIDATES_KEY: {"a": "1"}})

    assert tables.attempts == handover_module.COMMIT_ATTEMPTS
    assert not ctx.tables.exists(ctx.table(names.HANDOVER))


def spark_error(condition: str) -> PySparkException:
    """A PySpark error carrying ``condition``, as Spark Connect (serverless) raises Delta's."""
    return PySparkException(message=f"[{condition}] ...", errorClass=condition)


def test_only_commit_conflicts_are_tried_again() -> None:
    assert is_commit_conflict(spark_error("DELTA_CONCURRENT_DELETE_READ"))
    assert is_commit_conflict(spark_error("DELTA_CONCURRENT_APPEND.WITHOUT_HINT"))
    assert is_commit_conflict(spark_error("DELTA_METADATA_CHANGED"))
    assert not is_commit_conflict(spark_error("DELTA_METADATA_MISMATCH"))
    assert not is_commit_conflict(ValueError("DELTA_CONCURRENT_APPEND"))


def test_a_table_written_before_partitioning_is_partitioned_keeping_its_rows(
    ctx: RunContext,
) -> None:
    table = ctx.table(names.HANDOVER)
    old = [("6001", "train", train.CANDIDATES_KEY, '{"a": "1"}', 1, ctx.clock())]
    ctx.tables.write(rows_frame(ctx.spark, old, HANDOVER_SCHEMA), table)  # unpartitioned

    handover(ctx, "7001").publish("train", {train.CANDIDATES_KEY: {"a": "2"}})

    assert ctx.tables.delta_table(table).detail().first()["partitionColumns"] == ["job_run_id"]
    assert handover(ctx, "6001").read("train", train.CANDIDATES_KEY) == {"a": "1"}
    assert handover(ctx, "7001").read("train", train.CANDIDATES_KEY) == {"a": "2"}


def test_retention_deletes_old_job_runs_but_never_the_current_one(ctx: RunContext) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)

    def at(days_ago: int, job_run_id: str) -> HandOver:
        return HandOver(
            ctx.tables, ctx.table(names.HANDOVER), job_run_id, lambda: now - timedelta(days_ago)
        )

    at(200, "6001").publish("train", {train.CANDIDATES_KEY: {}})
    at(91, "6002").publish("check_drift", {SEGMENTS_TO_TRAIN: []})
    at(89, "6002").publish("train", {train.CANDIDATES_KEY: {}})  # a repair: still in use
    at(120, "6003").publish("monitor", {"alerts": []})
    at(120, "7001").publish("check_drift", {SEGMENTS_TO_TRAIN: []})  # the current run
    version = ctx.tables.version(ctx.table(names.HANDOVER))

    assert at(0, "7001").delete_expired(days=90) == ["6001", "6003"]

    assert sorted({r["job_run_id"] for r in rows(ctx)}) == ["6002", "7001"]
    assert ctx.tables.version(ctx.table(names.HANDOVER)) == version + 1
    assert at(0, "7001").delete_expired(days=90) == []  # nothing left to delete: no commit
    assert ctx.tables.version(ctx.table(names.HANDOVER)) == version + 1
    assert handover(ctx, None).delete_expired() == []
