"""The hand-over table: an estate's lists pass between a job run's tasks whatever their size,
a retry replaces what its attempt published, and another job run sees none of it."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from demand_forecasting import names
from demand_forecasting.models import train
from demand_forecasting.monitoring.check_drift import SEGMENTS_TO_TRAIN
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.handover import HandOver
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
