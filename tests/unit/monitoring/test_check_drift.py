"""check_drift on a tiny gold table: time-travel reference, planted shift, idempotent reruns."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pytest
from monitoring_support import gold_frame, register_champion, to_spark

from demand_forecasting import names
from demand_forecasting.monitoring import check_drift, drift
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.handover import HandOver
from demand_forecasting.platform.task_values import LocalTaskValues

#: The drift table's columns naming the job run that decided a row and when (docs/tables.md).
DECIDED_BY = ("decided_by_job_run", "decided_at")

SEGMENTS = {"alpha": 2, "beta": 2, "gamma": 2}
_JOB_RUNS = itertools.count(1)


def _run(
    ctx: RunContext,
    retry_months: int = 3,
    driver_max_rows: int = check_drift.PSI_DRIVER_MAX_ROWS,
    horizon: int | None = None,
) -> tuple[check_drift.DriftSummary, dict[str, object]]:
    store = LocalTaskValues()
    ctx.task_values = store
    # Each run a job run of its own: the segments go through the hand-over table.
    ctx.handover = HandOver(ctx.tables, ctx.table(names.HANDOVER), str(next(_JOB_RUNS)), ctx.clock)
    config = check_drift.DriftConfig(
        model_prefix="demand",
        refused_retry_months=retry_months,
        psi_driver_max_rows=driver_max_rows,
        horizon=horizon,
    )
    with store.running("check_drift"):
        summary = check_drift.run(ctx, config)
    handed = ctx.handover.read(check_drift.TASK_KEY, check_drift.SEGMENTS_TO_TRAIN)
    return summary, {**store.values["check_drift"], "segments_to_train": handed}


def _drift_rows(ctx: RunContext) -> list[tuple[object, ...]]:
    """The drift table's rows, but for who decided them and when (a rerun re-decides some)."""
    frame = ctx.tables.read(ctx.table(names.DRIFT)).drop(*DECIDED_BY)
    return sorted((tuple(r) for r in frame.collect()), key=repr)


def _deciders(ctx: RunContext) -> dict[str, str]:
    """``{segment: job run}`` of the drift table's rows (one job run per segment)."""
    frame = ctx.tables.read(ctx.table(names.DRIFT)).select("segment", "decided_by_job_run")
    found = {(r[0], r[1]) for r in frame.distinct().collect()}
    assert len(found) == len({segment for segment, _ in found}), found
    return dict(found)


@pytest.fixture
def planted(ctx: RunContext, tmp_path: Path) -> RunContext:
    """Gold v0 to 2021-12 (champions of alpha and beta trained on it; gamma has none), then
    gold v1 with 2022-01 and beta's newest 12 months restated at twice their level."""
    gold = ctx.table(names.FEATURES)
    history = gold_frame(SEGMENTS, date(2019, 1, 1), 37)
    ctx.tables.write(
        to_spark(ctx.spark, history[history["month"] < date(2022, 1, 1)]), gold, mode="overwrite"
    )
    for segment in ("alpha", "beta"):
        register_champion(
            ctx.mlflow,
            f"main.demand_forecasting.demand_{segment}",
            0,
            gold,
            str(tmp_path / segment),
        )
    shifted = history.copy()
    recent = (shifted["segment"] == "beta") & (shifted["month"] >= date(2021, 2, 1))
    shifted.loc[recent, ["y", "lag_1", "roll_mean_3"]] *= 2.0
    ctx.tables.write(to_spark(ctx.spark, shifted), gold, mode="overwrite")
    return ctx


def test_only_the_shifted_segment_and_the_one_without_champion_retrain_and_reruns_agree(
    planted: RunContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="demand_forecasting.monitoring.check_drift"):
        summary, values = _run(planted)
    assert (
        "check_drift 2022-01: 3 segments, 2 with champion; retrain 2: "
        "drift 1: beta (lag_1, roll_mean_3, y); no champion 1: gamma"
    ) in caplog.text

    assert summary.run_month == date(2022, 1, 1)
    assert values == {
        "segments_to_train": ["beta", "gamma"],
        "retrain_count": 2,
        "run_month": "2022-01",
    }
    assert summary.decision.decisions == {
        "alpha": drift.KEEP,
        "beta": drift.RETRAIN_DRIFT,
        "gamma": drift.RETRAIN_NO_CHAMPION,
    }
    rows = planted.tables.read(planted.table(names.DRIFT)).toPandas()
    beta = rows[rows["segment"] == "beta"].set_index("feature")
    assert set(beta.index) == {"y", "lag_1", "roll_mean_3"}
    assert beta["breach"].all() and (beta["reference_table_version"] == 0).all()
    assert (beta["current_table_version"] == 1).all()
    assert str(beta["reference_end"].iloc[0]) == "2021-12-01"
    assert beta.loc["y", "n_reference"] == 24 and beta.loc["y", "n_current"] == 24
    alpha = rows[rows["segment"] == "alpha"]
    assert not alpha["breach"].any() and (alpha["psi"] < 0.5).all()
    gamma = rows[rows["segment"] == "gamma"]
    assert len(gamma) == 1 and gamma["psi"].isna().all() and gamma["feature"].isna().all()
    first = _drift_rows(planted)

    # Retraining beta and gamma on gold v1 (which holds 2022-01): a rerun of the month keeps
    # its rows and retrains nothing again.
    gold = planted.table(names.FEATURES)
    for segment in ("beta", "gamma"):
        register_champion(
            planted.mlflow,
            f"main.demand_forecasting.demand_{segment}",
            1,
            gold,
            str(tmp_path / f"{segment}-2"),
        )
    first_run = _deciders(planted)["alpha"]
    summary, after = _run(planted)
    assert after == {"segments_to_train": [], "retrain_count": 0, "run_month": "2022-01"}
    assert summary.decision.decisions["alpha"] == drift.KEEP
    assert _drift_rows(planted) == first
    # The rows kept say they are the first run's decisions; alpha was decided again.
    rerun = planted.handover.job_run_id
    assert rerun is not None and rerun != first_run
    assert _deciders(planted) == {"alpha": rerun, "beta": first_run, "gamma": first_run}
    decided_at = planted.tables.read(planted.table(names.DRIFT)).select("decided_at")
    assert decided_at.where("decided_at IS NULL").count() == 0


def test_psi_on_the_driver_and_on_spark_write_the_same_rows(planted: RunContext) -> None:
    on_driver, driver_values = _run(planted)  # 2 x 2 series x 24 months: on the driver
    driver_rows = _drift_rows(planted)
    on_spark, spark_values = _run(planted, driver_max_rows=0)  # the same month on Spark

    assert spark_values == driver_values
    assert on_spark.decision == on_driver.decision and on_spark.breaches == on_driver.breaches
    assert (on_spark.rows_in, on_spark.rows_out) == (on_driver.rows_in, on_driver.rows_out)
    assert _drift_rows(planted) == driver_rows


def test_an_untagged_champion_is_retrained_for_want_of_a_reference(
    planted: RunContext,
) -> None:
    name = "main.demand_forecasting.demand_gamma"
    planted.mlflow.create_registered_model(name)
    version = planted.mlflow.create_model_version(name, source="/nowhere", tags={})
    planted.mlflow.set_registered_model_alias(name, "champion", version.version)

    summary, values = _run(planted)

    assert summary.decision.decisions["gamma"] == drift.RETRAIN_NO_REFERENCE
    assert values["segments_to_train"] == ["beta", "gamma"]


def test_a_new_segment_with_less_history_than_a_model_needs_waits_instead_of_training(
    planted: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    # delta's first months landed: 23 up to the run month 2022-01, one short of the 24 the
    # model's features need. Chosen for train, it would fail the run every month.
    gold = planted.table(names.FEATURES)
    young = gold_frame({"delta": 2}, date(2020, 3, 1), 23, seed=3)
    planted.tables.write(to_spark(planted.spark, young), gold, mode="append")

    with caplog.at_level("INFO", logger="demand_forecasting.monitoring.check_drift"):
        summary, values = _run(planted)

    assert summary.decision.decisions["delta"] == drift.WAIT_HISTORY
    assert values["segments_to_train"] == ["beta", "gamma"]
    assert "segment delta has no champion and 23 month(s) of history (2020-03 .. 2022-01)" in (
        caplog.text
    )
    assert "trained from 2022-02 on" in caplog.text
    rows = planted.tables.read(planted.table(names.DRIFT)).where("segment = 'delta'")
    assert [r["decision"] for r in rows.collect()] == [drift.WAIT_HISTORY]

    # Its earlier month landed (a history file): 24 months, trained as any segment without
    # champion.
    older = gold_frame({"delta": 2}, date(2020, 2, 1), 1, seed=4)
    planted.tables.write(to_spark(planted.spark, older), gold, mode="append")
    summary, values = _run(planted)
    assert summary.decision.decisions["delta"] == drift.RETRAIN_NO_CHAMPION
    assert values["segments_to_train"] == ["beta", "delta", "gamma"]


def test_a_segment_whose_candidate_was_just_refused_waits_then_retries(
    planted: RunContext,
) -> None:
    name = "main.demand_forecasting.demand_gamma"
    planted.mlflow.create_registered_model(name)
    tags = {"validation_status": "refused", "trained_until": "2021-12-01"}
    planted.mlflow.create_model_version(name, source="/nowhere", tags=tags)

    summary, values = _run(planted)  # run month 2022-01: refused one month ago
    assert summary.decision.decisions["gamma"] == drift.WAIT_REFUSED
    assert values["segments_to_train"] == ["beta"]
    gamma = planted.tables.read(planted.table(names.DRIFT)).where("segment = 'gamma'")
    assert [r["decision"] for r in gamma.collect()] == [drift.WAIT_REFUSED]

    summary, values = _run(planted, retry_months=1)  # one month is enough to retry
    assert summary.decision.decisions["gamma"] == drift.RETRAIN_NO_CHAMPION
    assert values["segments_to_train"] == ["beta", "gamma"]


def test_a_rerun_after_this_months_refusal_keeps_the_recorded_decision(
    planted: RunContext,
) -> None:
    summary, values = _run(planted)  # gamma has no champion: retrained this month
    assert summary.decision.decisions["gamma"] == drift.RETRAIN_NO_CHAMPION
    first = _drift_rows(planted)
    # ... and its candidate, trained on data up to the run month, was refused.
    name = "main.demand_forecasting.demand_gamma"
    planted.mlflow.create_registered_model(name)
    tags = {"validation_status": "refused", "trained_until": "2022-01-01"}
    planted.mlflow.create_model_version(name, source="/nowhere", tags=tags)

    summary, values = _run(planted)  # a rerun of 2022-01

    assert summary.decision.decisions["gamma"] == drift.WAIT_REFUSED
    assert values["segments_to_train"] == ["beta"]
    assert _drift_rows(planted) == first, "the month's record still says why gamma retrained"


def test_a_rerun_after_this_months_refusal_of_a_champions_challenger_retrains_nothing(
    planted: RunContext,
) -> None:
    summary, values = _run(planted)  # beta drifted: retrained this month
    assert summary.decision.decisions["beta"] == drift.RETRAIN_DRIFT
    first = _drift_rows(planted)
    # ... and its candidate, trained on data up to the run month, was refused: beta keeps its
    # champion (trained until 2021-12), and is tried again next month.
    tags = {"validation_status": "refused", "trained_until": "2022-01-01"}
    planted.mlflow.create_model_version(
        "main.demand_forecasting.demand_beta", source="/nowhere", tags=tags
    )

    summary, values = _run(planted)  # a rerun of 2022-01

    assert summary.decision.decisions["beta"] == drift.WAIT_REFUSED
    assert values["segments_to_train"] == ["gamma"]
    assert _drift_rows(planted) == first, "the month's record still says why beta retrained"


def test_the_log_line_names_a_few_segments_per_reason_and_counts_the_rest() -> None:
    new = [f"s{i:02d}" for i in range(11)]
    decision = drift.decide([*new, "z"], breaching=["z"], without_champion=new)

    text = check_drift._describe(decision, {"z": ["y"]})

    assert text == (
        "no champion 11: s00, s01, s02, s03, s04, s05, s06, s07, and 3 more; drift 1: z (y)"
    )


def test_a_champion_trained_for_another_horizon_is_retrained_when_the_horizon_changes(
    planted: RunContext, tmp_path: Path
) -> None:
    # alpha's champion is a version of a training run that forecast 12 months.
    name = "main.demand_forecasting.demand_alpha"
    experiment = planted.mlflow.create_experiment("train", str(tmp_path / "artifacts"))
    run = planted.mlflow.create_run(experiment)
    planted.mlflow.log_param(run.info.run_id, "horizon", "12")
    tags = {"training_table": planted.table(names.FEATURES), "training_table_version": "0"}
    version = planted.mlflow.create_model_version(
        name, source=str(tmp_path / "alpha-12"), run_id=run.info.run_id, tags=tags
    )
    planted.mlflow.set_registered_model_alias(name, "champion", version.version)

    summary, values = _run(planted, horizon=12)
    assert summary.decision.decisions["alpha"] == drift.KEEP

    summary, values = _run(planted, horizon=6)  # the bundle's horizon went from 12 to 6
    assert summary.decision.decisions["alpha"] == drift.RETRAIN_HORIZON
    assert values["segments_to_train"] == ["alpha", "beta", "gamma"]


def test_a_feature_newer_than_the_champions_training_data_is_measured_as_unknown(
    ctx: RunContext, tmp_path: Path
) -> None:
    gold = ctx.table(names.FEATURES)
    history = gold_frame({"alpha": 2}, date(2019, 1, 1), 37)
    old = to_spark(ctx.spark, history[history["month"] < date(2022, 1, 1)]).drop("roll_mean_3")
    ctx.tables.write(old, gold, mode="overwrite")
    register_champion(ctx.mlflow, "main.demand_forecasting.demand_alpha", 0, gold, str(tmp_path))
    # build_features added roll_mean_3 to gold after the champion was trained on version 0.
    ctx.tables.write(to_spark(ctx.spark, history), gold, mode="overwrite", overwriteSchema="true")

    summary, _ = _run(ctx)

    assert summary.decision.decisions == {"alpha": drift.KEEP}
    rows = ctx.tables.read(ctx.table(names.DRIFT)).toPandas().set_index("feature")
    assert rows.loc["roll_mean_3", "n_reference"] == 0 and not rows.loc["roll_mean_3", "breach"]
    assert rows.loc["y", "n_reference"] == 24


def test_a_missing_feature_table_is_a_clear_error(ctx: RunContext) -> None:
    with pytest.raises(RuntimeError, match="run ingest, validate_data and build_features"):
        check_drift.run(ctx, check_drift.DriftConfig())


def test_a_drift_table_from_before_the_deciding_job_run_was_recorded_gains_the_columns(
    planted: RunContext,
) -> None:
    _run(planted)
    table = planted.table(names.DRIFT)
    old = planted.tables.read(table).drop(*DECIDED_BY)
    planted.tables.write(old, table, mode="overwrite", overwriteSchema="true")
    # gamma's candidate of this month was refused: the rerun keeps its old row.
    name = "main.demand_forecasting.demand_gamma"
    planted.mlflow.create_registered_model(name)
    tags = {"validation_status": "refused", "trained_until": "2022-01-01"}
    planted.mlflow.create_model_version(name, source="/nowhere", tags=tags)

    _run(planted)

    deciders = _deciders(planted)
    assert deciders["gamma"] is None  # kept from before: not recorded, not made up
    assert deciders["alpha"] == deciders["beta"] == planted.handover.job_run_id
