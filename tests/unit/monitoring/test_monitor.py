"""The monitor's report inputs: the same figures whether totals come from one collect or Spark."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from monitoring_support import gold_frame, months, to_spark
from pyspark.sql import functions as F

from demand_forecasting import cli, names
from demand_forecasting.data.config import load_dataset_config
from demand_forecasting.monitoring import monitor, telemetry
from demand_forecasting.monitoring.telemetry import TaskRecorder, record_segment_seconds
from demand_forecasting.platform import handover
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.handover import HandOver
from demand_forecasting.platform.task_values import LocalTaskValues
from demand_forecasting.task import base_parser

FORECAST_SCHEMA = (
    "segment string, series_id string, month date, horizon int, run_month date, "
    "forecast double, model_version string"
)
RUN_MONTHS = months(date(2021, 10, 1), 3)


@pytest.fixture
def forecast_tables(ctx: RunContext) -> RunContext:
    """Gold to 2022-01 (two segments of two series) and three months of 3-ahead forecasts;
    beta's champion changes in the newest run month."""
    gold = gold_frame({"alpha": 2, "beta": 2}, date(2019, 1, 1), 37)
    ctx.tables.write(to_spark(ctx.spark, gold), ctx.table(names.FEATURES), mode="overwrite")
    actual = gold.set_index(["series_id", "month"])["y"]
    rows = []
    for run_month in RUN_MONTHS:
        for series in sorted(gold["series_id"].unique()):
            segment = series.rsplit("_", 1)[0]
            version = "2" if segment == "beta" and run_month == RUN_MONTHS[-1] else "1"
            for horizon, month in enumerate(months(run_month, 4)[1:], start=1):
                level = actual.get((series, month), actual[(series, run_month)])
                rows.append(
                    (segment, series, month, horizon, run_month, float(1.1 * level), version)
                )
    ctx.tables.write(ctx.spark.createDataFrame(rows, FORECAST_SCHEMA), ctx.table(names.FORECASTS))
    ctx.task_values = LocalTaskValues()
    return ctx


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_report_totals_on_the_driver_and_on_spark_agree(forecast_tables: RunContext) -> None:
    on_driver = monitor.MonitorConfig()
    on_spark = monitor.MonitorConfig(driver_max_rows=0)
    measured = monitor.measure(forecast_tables, on_driver)
    try:
        assert measured.run_month == RUN_MONTHS[-1] and measured.forecast_rows == 36
        driver = monitor.gather_report_inputs(forecast_tables, on_driver, measured)
        spark = monitor.gather_report_inputs(forecast_tables, on_spark, measured)
    finally:
        measured.release()

    assert driver.series_forecast == spark.series_forecast == 4
    assert driver.new_champions == spark.new_champions == {"beta": "v1 -> v2"}
    assert driver.segments_without_champion == spark.segments_without_champion == []
    for name in ("forecasts", "past_forecasts", "actuals"):
        pd.testing.assert_frame_equal(_sorted(getattr(driver, name)), _sorted(getattr(spark, name)))
    assert len(driver.forecasts) == 2 * 3 and len(driver.past_forecasts) == 2 * 2
    # Actual totals over the forecast series only, within the history shown.
    assert len(driver.actuals) == 2 * 37


def test_new_champions_compare_each_segment_with_its_own_previous_forecast() -> None:
    jan, feb, mar = date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)
    versions = pd.DataFrame(
        [
            ("alpha", jan, "9"),
            ("alpha", mar, "9"),  # skipped in February (no value): not new in March
            ("beta", jan, "9"),
            ("beta", feb, "10"),
            ("beta", mar, "10"),
            ("gamma", feb, "2"),
            ("gamma", mar, "3"),
            ("delta", mar, "1"),
        ],
        columns=["segment", "run_month", "model_version"],
    )

    assert monitor.new_champions(versions, mar) == {"gamma": "v2 -> v3", "delta": "new v1"}
    assert monitor.new_champions(versions, feb) == {"beta": "v9 -> v10", "gamma": "new v2"}


def test_the_report_names_the_months_series_have_no_value_in(
    forecast_tables: RunContext,
) -> None:
    # The month file of 2021-12 never arrived (silver and gold hold gap rows, y null, for all
    # four series) and one series' 2021-11 row was quarantined; 2020's gap is older than a year.
    ctx = forecast_tables
    gold = ctx.tables.read(ctx.table(names.FEATURES))
    gap = (F.col("month") == F.lit(date(2021, 12, 1))) | (
        (F.col("series_id") == "alpha_0") & F.col("month").isin(date(2021, 11, 1), date(2020, 6, 1))
    )
    with_gaps = gold.withColumn("y", F.when(gap, F.lit(None)).otherwise(F.col("y")))
    ctx.tables.write(with_gaps.localCheckpoint(), ctx.table(names.FEATURES), mode="overwrite")

    text = monitor.run(ctx, monitor.MonitorConfig()).report.read_text()  # type: ignore[union-attr]

    assert "**Months without a value**" in text
    assert (
        "in the year up to the run month: 2021-11 (1 of 4 series), 2021-12 (4 of 4 series)." in text
    )


def test_the_report_lists_the_newest_quarantined_files_with_their_rules(
    forecast_tables: RunContext,
) -> None:
    ctx = forecast_tables
    assert monitor.quarantine_summary(ctx)["quarantined_rows"] is None  # never quarantined
    bad = [
        ("file:/landing/x_2021-12.csv", "turnover_is_number", datetime(2022, 1, 3, 6, 0)),
        ("file:/landing/x_2021-12.csv", "turnover_not_negative", datetime(2022, 1, 3, 6, 0)),
        ("file:/landing/x_2022-01.csv", "turnover_is_number", datetime(2022, 2, 3, 6, 0)),
    ]
    schema = "source_file string, failed_rule string, validated_at timestamp"
    ctx.tables.write(ctx.spark.createDataFrame(bad, schema), ctx.table(names.QUARANTINE))

    summary = monitor.quarantine_summary(ctx)
    text = monitor.run(ctx, monitor.MonitorConfig()).report.read_text()  # type: ignore[union-attr]

    assert summary["quarantined_rows"] == 3
    assert summary["quarantine"].to_dict("records") == [
        {
            "source_file": "x_2022-01.csv",
            "rows": 1,
            "rules": "turnover_is_number",
            "validated_at": "2022-02-03 06:00",
        },
        {
            "source_file": "x_2021-12.csv",
            "rows": 2,
            "rules": "turnover_is_number, turnover_not_negative",
            "validated_at": "2022-01-03 06:00",
        },
    ]
    assert "The quarantine table holds 3 row(s)" in text
    assert "| x_2022-01.csv | 1 | turnover_is_number |" in text


def test_the_report_counts_the_quarantined_rows_a_later_load_corrected(
    forecast_tables: RunContext,
) -> None:
    # Rows quarantined as they landed (text) and silver as the correction files left it.
    ctx, aus = forecast_tables, load_dataset_config("aus_retail")
    first, later = datetime(2022, 1, 3, 6, 0), datetime(2022, 1, 10, 6, 0)
    december, january = "file:/landing/x_2021-12.csv", "file:/landing/x_2022-01.csv"
    correction = "file:/landing/x_2021-12_correction.csv"

    def bad(series: str | None, month: str, file: str, load: datetime, batch: int) -> tuple:
        state, industry = "Tasmania", "Liquor retailing"
        return (state, industry, series, month, "n/a", file, load, batch, "turnover_is_number")

    quarantined = [
        bad("A1", "2021-12-01", december, first, 5),  # a later load has its value: corrected
        bad("A2", "2021-12-01", december, first, 5),  # silver's value is older: not corrected
        bad("A3", "2021-12-15", december, first, 5),  # not the month silver holds
        bad("A4", "12/2021", december, first, 5),  # the month does not parse: never corrected
        bad(None, "2021-12-01", december, first, 5),  # no series id: never corrected
        bad("A5", "2021-12-01", december, first, 5),  # a later gap row: no value
        bad("C1", "2021-12-01", december, first, 5),  # its correction came in the same batch
        bad("B1", "2022-01-01", january, first, 5),  # a duplicate, twice; corrected later
        bad("B1", "2022-01-01", january, first, 5),
    ]
    ctx.tables.write(
        ctx.spark.createDataFrame(
            quarantined,
            "state string, industry string, series_id string, month string, turnover string, "
            "source_file string, load_time timestamp, batch_id long, failed_rule string",
        ).withColumn("validated_at", F.col("load_time")),
        ctx.table(names.QUARANTINE),
    )
    silver = [
        ("A1", date(2021, 12, 1), 1.0, correction, later, 6),
        ("A2", date(2021, 12, 1), 1.0, "file:/landing/x_2021-11.csv", datetime(2021, 12, 3), 4),
        ("A3", date(2021, 12, 1), 1.0, correction, later, 6),
        ("A4", date(2021, 12, 1), 1.0, correction, later, 6),
        ("A5", date(2021, 12, 1), None, None, None, None),
        ("C1", date(2021, 12, 1), 1.0, correction, first, 5),
        ("B1", date(2022, 1, 1), 1.0, "file:/landing/x_2022-01_fix.csv", later, 6),
    ]
    ctx.tables.write(
        ctx.spark.createDataFrame(
            silver,
            "series_id string, month date, y double, source_file string, load_time timestamp, "
            "batch_id long",
        ),
        ctx.table(names.SILVER),
    )

    summary = monitor.quarantine_summary(ctx, aus)
    text = monitor.run(ctx, monitor.MonitorConfig(dataset=aus)).report.read_text()  # type: ignore[union-attr]

    assert (summary["quarantined_rows"], summary["quarantined_corrected"]) == (9, 4)
    files = summary["quarantine"].set_index("source_file")
    assert files.loc["x_2021-12.csv", ["rows", "corrected"]].tolist() == [7, 2]
    assert files.loc["x_2022-01.csv", ["rows", "corrected"]].tolist() == [2, 2]
    assert "| source_file | rows | corrected | rules | validated_at |" in text
    assert "| x_2021-12.csv | 7 | 2 | turnover_is_number |" in text
    assert "4 of them have been corrected since" in text
    assert "The 5 row(s) not corrected still need a correction file" in text
    # Without the dataset nothing is counted, and the report says what it said before.
    assert "corrected" not in monitor.quarantine_summary(ctx)["quarantine"].columns


def test_the_report_tells_to_land_a_row_of_an_earlier_month_in_a_correction_of_that_month(
    forecast_tables: RunContext,
) -> None:
    # Quarantined as validation writes them: a plain month file of 2022-01 with rows of
    # 2021-11 and 2021-12, and a row of a month that does not parse.
    ctx, aus = forecast_tables, load_dataset_config("aus_retail")
    january = "file:/landing/aus_retail_2022-01.csv"
    earlier = ["month_not_before_file_month"]
    quarantined = [
        ("A1", "2021-11-01", january, earlier[0], earlier),
        ("A2", "2021-12-01", january, earlier[0], earlier),
        ("A3", "2021-12-01", january, earlier[0], earlier),
        ("A4", "01/2022", january, "month_parses", ["month_parses"]),
    ]
    ctx.tables.write(
        ctx.spark.createDataFrame(
            quarantined,
            "series_id string, month string, source_file string, failed_rule string, "
            "failed_rules array<string>",
        ).withColumn("validated_at", F.lit(datetime(2022, 2, 3, 6, 0))),
        ctx.table(names.QUARANTINE),
    )

    summary = monitor.quarantine_summary(ctx, aus)
    text = monitor.run(ctx, monitor.MonitorConfig(dataset=aus)).report.read_text()  # type: ignore[union-attr]

    assert summary["quarantine_row_months"] == {"aus_retail_2022-01.csv": ["2021-11", "2021-12"]}
    assert (
        "`aus_retail_2022-01.csv` has rows of 2021-11, 2021-12: land them in "
        "`aus_retail_2021-11_correction.csv`, `aus_retail_2021-12_correction.csv`." in text
    )
    assert f"does not parse as `{aus.month_format}`" in text
    assert monitor.quarantine_summary(ctx)["quarantine_row_months"] == {}  # no dataset: unknown


def test_monitor_takes_the_bundles_dataset_and_model_prefix() -> None:
    parser = base_parser("monitor", "")
    monitor.add_arguments(parser)
    common = ["--catalog", "dev", "--schema", "small", "--target", "dev"]
    config = monitor.make_config(
        parser.parse_args([*common, "--dataset", "aus_retail_small", "--model-prefix", "sales"])
    )
    assert config.dataset is not None and config.dataset.name == "aus_retail_small"
    assert config.model_prefix == "sales"


def test_run_writes_the_accuracy_table_beside_the_report(forecast_tables: RunContext) -> None:
    summary = monitor.run(forecast_tables, monitor.MonitorConfig())

    assert summary.report is not None and summary.report.is_file()
    written = forecast_tables.tables.read(forecast_tables.table(names.ACCURACY)).toPandas()
    assert len(written) == summary.rows_out > 0
    assert set(written["segment"]) == {"alpha", "beta"}


def test_a_failed_accuracy_write_fails_the_run(
    forecast_tables: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    accuracy = forecast_tables.table(names.ACCURACY)
    real_write = forecast_tables.tables.write

    def write(df, name, mode="append", **options):  # type: ignore[no-untyped-def]
        if name == accuracy:
            raise OSError(f"disk full writing {name}")
        real_write(df, name, mode, **options)

    monkeypatch.setattr(forecast_tables.tables, "write", write)
    with pytest.raises(OSError, match=r"disk full writing .*forecast_accuracy"):
        monitor.run(forecast_tables, monitor.MonitorConfig())
    assert not forecast_tables.tables.exists(accuracy)


def test_run_prices_the_job_runs_tasks_per_model_and_a_rerun_replaces_them(
    forecast_tables: RunContext,
) -> None:
    ctx = forecast_tables
    with telemetry.batch():
        for task, seconds in (("build_features", None), ("score", {"alpha": 1.0, "beta": 3.0})):
            with TaskRecorder(task, "dev", job_run_id="31") as recorder:
                recorder.bind(ctx)
                if seconds:
                    record_segment_seconds(seconds)
        cfg = monitor.MonitorConfig(job_run_id="31", cost_per_hour=3600.0)
        first = monitor.run(ctx, cfg)
        tasks = monitor.job_run_telemetry(ctx, "31")
        monitor.run(ctx, cfg)

    written = ctx.tables.read(ctx.table(names.MODEL_COSTS)).toPandas()
    # One row per model and task (the rerun replaced the first run's rows)...
    assert sorted(zip(written["task"], written["segment"], written["basis"], strict=True)) == [
        ("build_features", "alpha", "series"),
        ("build_features", "beta", "series"),
        ("score", "alpha", "measured"),
        ("score", "beta", "measured"),
    ]
    assert (written["job_run_id"] == "31").all() and (written["cost_per_hour"] == 3600.0).all()
    assert (written["run_month"] == RUN_MONTHS[-1]).all()
    # ... at one unit per second here, adding up to the two tasks' seconds.
    score = written[written["task"] == "score"].set_index("segment")["cost"]
    assert score["beta"] == pytest.approx(3 * score["alpha"])
    assert written["cost"].sum() == pytest.approx(tasks["duration_s"].sum())
    assert first.report is not None
    text = first.report.read_text()
    assert "## Cost per model (estimate)" in text and "(score) is measured" in text
    assert (first.report.parent / "cost_per_model.png").is_file()


def test_without_a_job_run_no_cost_is_written(forecast_tables: RunContext) -> None:
    summary = monitor.run(forecast_tables, monitor.MonitorConfig())

    assert not forecast_tables.tables.exists(forecast_tables.table(names.MODEL_COSTS))
    assert summary.report is not None
    assert "_no task times for this job run_" in summary.report.read_text()


def test_a_negative_price_is_refused_with_the_option_named() -> None:
    with pytest.raises(ValueError, match=r"--compute-cost-per-hour=-2\.0: must be >= 0"):
        monitor.MonitorConfig(cost_per_hour=-2.0)


def test_report_of_a_month_never_forecast_is_refused_naming_the_months_there_are(
    forecast_tables: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    command = ["report", "--catalog", "main", "--schema", "demand_forecasting"]

    assert cli.main([*command, "--run-month", "2030-01"]) == 1
    assert "no forecasts of run month 2030-01" in caplog.text
    assert "run months with forecasts: 2021-10 .. 2021-12" in caplog.text
    assert forecast_tables.state_dir is not None
    assert not (forecast_tables.state_dir / monitor.REPORTS_FOLDER / "2030-01").exists()
    with pytest.raises(SystemExit) as refused:  # argparse: before any Spark or table work
        cli.main([*command, "--run-month", "2030-1x"])
    assert refused.value.code == 2


def test_report_of_an_earlier_month_shows_that_months_job_run(
    forecast_tables: RunContext,
) -> None:
    ctx = forecast_tables
    with telemetry.batch():  # job run 41 scored 2021-11, then 42 scored 2021-12
        for job_run, run_month in (("41", RUN_MONTHS[1]), ("42", RUN_MONTHS[2])):
            with TaskRecorder("score", "dev", job_run_id=job_run) as recorder:
                recorder.bind(ctx)
                record_segment_seconds({"alpha": 1.0, "beta": 1.0})
            telemetry.flush()
            monitor.run(ctx, monitor.MonitorConfig(run_month=run_month, job_run_id=job_run))
    command = ["report", "--catalog", "main", "--schema", "demand_forecasting"]
    assert ctx.state_dir is not None
    folder = ctx.state_dir / monitor.REPORTS_FOLDER

    assert cli.main([*command, "--run-month", "2021-11"]) == 0
    assert "Job run `41`" in (folder / "2021-11" / "report.md").read_text()
    assert cli.main(command) == 0  # the newest month: the newest job run
    assert "Job run `42`" in (folder / "2021-12" / "report.md").read_text()
    # A month no recorded job run scored: no other month's times or costs.
    assert cli.main([*command, "--run-month", "2021-10"]) == 0
    text = (folder / "2021-10" / "report.md").read_text()
    assert "Job run `n/a`" in text and "_no task times for this job run_" in text


def test_a_task_that_failed_in_the_run_fails_monitor_after_the_report(
    forecast_tables: RunContext,
) -> None:
    ctx = forecast_tables
    with telemetry.batch():
        with TaskRecorder("ingest", "dev", job_run_id="61") as recorder:
            recorder.bind(ctx)
        # build_features failed once and succeeded on its retry: not a failure of the run.
        for fails in (True, False):
            with (
                pytest.raises(ValueError) if fails else nullcontext(),
                TaskRecorder("build_features", "dev", job_run_id="61") as recorder,
            ):
                recorder.bind(ctx)
                if fails:
                    raise ValueError("transient")
        with (
            pytest.raises(RuntimeError),
            TaskRecorder("train", "dev", job_run_id="61") as recorder,
        ):
            recorder.bind(ctx)
            raise RuntimeError("1 of 2 segment(s) failed to train: beta: month twice")
        cfg = monitor.MonitorConfig(job_run_id="61")
        with pytest.raises(monitor.UpstreamTaskFailedError) as failed:
            monitor.run(ctx, cfg)

    message = str(failed.value)
    assert "1 task(s) of job run 61 failed: train: RuntimeError: 1 of 2 segment(s)" in message
    assert "build_features" not in message and "retrain the failed segments" in message
    # Everything else was written first.
    assert ctx.state_dir is not None
    report = (ctx.state_dir / monitor.REPORTS_FOLDER / "2021-12" / "report.md").read_text()
    assert "- **FAILED task train**: RuntimeError: 1 of 2 segment(s) failed" in report
    assert ctx.tables.exists(ctx.table(names.ACCURACY))
    assert ctx.tables.exists(ctx.table(names.MODEL_COSTS))


def test_failed_tasks_takes_each_tasks_last_attempt() -> None:
    frame = pd.DataFrame(
        [
            ("train", "FAILED", "boom"),
            ("train", "SUCCESS", None),
            ("deploy", "FAILED", None),
            ("monitor", "FAILED", "itself"),
        ],
        columns=["task", "status", "error"],
    )
    assert monitor.failed_tasks(frame) == {"deploy": "no error recorded"}
    assert monitor.failed_tasks(frame.iloc[0:0]) == {}
    # The job's result states decide too: a process killed after its telemetry said SUCCESS,
    # or killed before it wrote any.
    states = {"train": "failed", "check_drift": "timedout", "score": "success"}
    assert monitor.failed_tasks(frame, states) == {
        "deploy": "no error recorded",
        "train": "result state failed",
        "check_drift": "result state timedout",
    }
    assert monitor.failed_tasks(frame.iloc[0:0], {"train": "excluded"}) == {}
    assert monitor.upstream_states(["train=FAILED", " deploy = success"]) == {
        "train": "failed",
        "deploy": "success",
    }
    with pytest.raises(ValueError, match="--upstream-state 'train': write TASK=STATE"):
        monitor.upstream_states(["train"])


def _inputs(ctx: RunContext) -> monitor.ReportInputs:
    cfg = monitor.MonitorConfig()
    measured = monitor.measure(ctx, cfg)
    try:
        return monitor.gather_report_inputs(ctx, cfg, measured)
    finally:
        measured.release()


def test_a_segment_with_no_value_in_the_run_month_is_not_reported_as_without_champion(
    forecast_tables: RunContext,
) -> None:
    # Every newest-month row of beta was quarantined: score forecast alpha only. beta has a
    # champion; the report must say why it has no forecast, not that it lacks a champion.
    ctx, newest = forecast_tables, RUN_MONTHS[-1]
    gold = gold_frame({"alpha": 2, "beta": 2}, date(2019, 1, 1), 37)
    gold = gold[~((gold["segment"] == "beta") & (gold["month"] == newest))]
    ctx.tables.write(to_spark(ctx.spark, gold), ctx.table(names.FEATURES), mode="overwrite")
    forecasts = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()
    keep = ~((forecasts["segment"] == "beta") & (forecasts["run_month"] == newest))
    ctx.tables.write(
        ctx.spark.createDataFrame(forecasts[keep], FORECAST_SCHEMA),
        ctx.table(names.FORECASTS),
        mode="overwrite",
    )
    drift = [(newest, s, "y", 0.0, 1.0, False, "keep") for s in ("alpha", "beta")]
    ctx.tables.write(
        ctx.spark.createDataFrame(
            drift,
            "run_month date, segment string, feature string, psi double, psi_critical double, "
            "breach boolean, decision string",
        ),
        ctx.table(names.DRIFT),
    )

    inputs = _inputs(ctx)

    assert inputs.segments_without_champion == []
    assert inputs.segments_without_data == ["beta"]
    from demand_forecasting.monitoring.report import render_markdown

    text = render_markdown(inputs, {})
    assert "Segments with no value in 2021-12 (not forecast" in text and "beta" in text


def test_the_report_command_finds_the_fallback_segments_in_the_registry(
    forecast_tables: RunContext,
) -> None:
    # `demand-forecasting report` runs outside the job: score's task values are not there.
    ctx = forecast_tables
    forecasts = ctx.tables.read(ctx.table(names.FORECASTS))
    ctx.tables.write(
        forecasts.withColumn(
            "model_name", F.concat(F.lit("main.demand_forecasting.demand_"), "segment")
        ),
        ctx.table(names.FORECASTS),
        mode="overwrite",
        overwriteSchema="true",
    )
    for segment in ("alpha", "beta"):
        name = f"main.demand_forecasting.demand_{segment}"
        ctx.mlflow.create_registered_model(name)
        for version in ("1", "2"):
            tags = {"fallback": "seasonal_naive"} if segment == "alpha" else {}
            created = ctx.mlflow.create_model_version(name, source="/tmp/none", tags=tags)
            assert str(created.version) == version

    inputs = _inputs(ctx)

    assert inputs.segments_on_fallback == ["alpha"]
    # In the job, what score handed over is the answer (no registry reads).
    ctx.handover.publish("score", {"segments_on_fallback": ["beta"]})
    assert _inputs(ctx).segments_on_fallback == ["beta"]


@pytest.mark.parametrize("driver_max_rows", [monitor.REPORT_DRIVER_MAX_ROWS, 0])
def test_segments_forecasting_another_horizon_than_the_bundle_are_named(
    forecast_tables: RunContext, driver_max_rows: int
) -> None:
    # Every champion forecasts 3 months: after the bundle's horizon went to 4 (and no
    # candidate at 4 passed validation yet) the report names both segments.
    def off_horizon(horizon: int | None) -> dict[str, int]:
        cfg = monitor.MonitorConfig(horizon=horizon, driver_max_rows=driver_max_rows)
        measured = monitor.measure(forecast_tables, cfg)
        try:
            inputs = monitor.gather_report_inputs(forecast_tables, cfg, measured)
        finally:
            measured.release()
        assert inputs.horizon == horizon
        return inputs.segments_off_horizon

    assert off_horizon(None) == {} and off_horizon(3) == {}
    assert off_horizon(4) == {"alpha": 3, "beta": 3}


def test_the_job_parent_run_is_tagged_and_named_with_the_dataset(
    forecast_tables: RunContext,
) -> None:
    # Datasets share the experiment: the job run's parent run says which one it ran.
    ctx, experiment = forecast_tables, "/Shared/monitor_dataset"
    cfg = monitor.MonitorConfig(
        job_run_id="81", experiment=experiment, dataset=load_dataset_config("pbs")
    )

    monitor.run(ctx, cfg)

    (parent,) = ctx.mlflow.search_runs(
        [ctx.mlflow.get_experiment_by_name(experiment).experiment_id],
        filter_string="tags.dataset = 'pbs'",
    )
    assert parent.info.run_name == "monthly job run 81 (pbs)"
    assert parent.data.tags["run_month"] == "2021-12"


def _drop_december_forecasts(ctx: RunContext, *series: str) -> None:
    """Score forecast none of ``series`` in December (their segments it did forecast)."""
    forecasts = ctx.tables.read(ctx.table(names.FORECASTS))
    dropped = (F.col("run_month") == F.lit(date(2021, 12, 1))) & F.col("series_id").isin(*series)
    ctx.tables.write(
        forecasts.where(~dropped).localCheckpoint(), ctx.table(names.FORECASTS), mode="overwrite"
    )


def _quarantine(ctx: RunContext, rows: list[tuple[str, ...]]) -> None:
    """Quarantined aus_retail rows ``(state, industry, series_id, month, turnover,
    source_file, failed_rule)`` as validate_data writes them."""
    loaded = datetime(2022, 1, 3, 6, 0)
    ctx.tables.write(
        ctx.spark.createDataFrame(
            rows,
            "state string, industry string, series_id string, month string, turnover string, "
            "source_file string, failed_rule string",
        ).select(
            "*",
            F.lit(loaded).alias("load_time"),
            F.lit(5).cast("long").alias("batch_id"),
            F.lit(loaded).alias("validated_at"),
        ),
        ctx.table(names.QUARANTINE),
    )


def test_the_report_names_each_series_not_forecast_and_why(forecast_tables: RunContext) -> None:
    # Score forecast neither alpha_1 (its December row is in quarantine) nor beta_0 (it
    # stopped): their segments were forecast, so only the series count would show it.
    ctx = forecast_tables
    _drop_december_forecasts(ctx, "alpha_1", "beta_0")
    rule = "turnover_is_number"
    _quarantine(
        ctx,
        [
            (
                "Tasmania",
                "Liquor retailing",
                "alpha_1",
                "2021-12-01",
                "n/a",
                "file:/l/x_2021-12.csv",
                rule,
            ),
            (
                "Tasmania",
                "Liquor retailing",
                "beta_0",
                "2021-11-01",
                "n/a",
                "file:/l/x_2021-11.csv",
                rule,
            ),
        ],
    )

    cfg = monitor.MonitorConfig(dataset=load_dataset_config("aus_retail"))
    text = monitor.run(ctx, cfg).report.read_text()  # type: ignore[union-attr]

    assert "**2 series forecast**" in text
    assert (
        "- Series not forecast (2; their segments were): alpha_1 (its 2021-12 row is in "
        "quarantine); beta_0 (no value in 2021-12: the series stopped, or its row did not "
        "arrive)." in text
    )


def test_a_series_whose_row_in_the_months_file_is_quarantined_is_not_called_stopped(
    forecast_tables: RunContext,
) -> None:
    # The December file's rows of alpha_1 (month name mistyped) and beta_0 (an earlier
    # month, by accident) are in quarantine: their December values most likely came in
    # them, so "the series stopped, or its row did not arrive" would mislead.
    ctx = forecast_tables
    _drop_december_forecasts(ctx, "alpha_1", "beta_0")
    december_file = "file:/l/aus_retail_2021-12.csv"
    _quarantine(
        ctx,
        [
            (
                "Tasmania",
                "Liquor retailing",
                "alpha_1",
                "2021-1x-01",
                "5",
                december_file,
                "month_parses",
            ),
            (
                "Tasmania",
                "Liquor retailing",
                "beta_0",
                "2021-06-01",
                "5",
                december_file,
                "month_not_before_file_month",
            ),
        ],
    )

    cfg = monitor.MonitorConfig(dataset=load_dataset_config("aus_retail"))
    text = monitor.run(ctx, cfg).report.read_text()  # type: ignore[union-attr]

    assert (
        "- Series not forecast (2; their segments were): alpha_1 (its row in "
        "aus_retail_2021-12.csv, the 2021-12 file, is in quarantine (rule month_parses)); "
        "beta_0 (its row in aus_retail_2021-12.csv, the 2021-12 file, is in quarantine (rule "
        "month_not_before_file_month))." in text
    )


def test_monitor_deletes_the_hand_over_of_expired_job_runs_keeping_its_own(
    forecast_tables: RunContext,
) -> None:
    ctx, table = forecast_tables, forecast_tables.table(names.HANDOVER)
    long_ago = ctx.clock() - timedelta(days=handover.RETENTION_DAYS + 1)
    HandOver(ctx.tables, table, "71", lambda: long_ago).publish("score", {"run_month": "2021-12"})
    HandOver(ctx.tables, table, "91", lambda: long_ago).publish("score", {"run_month": "2021-12"})
    ctx.handover = HandOver(ctx.tables, table, "91", ctx.clock)

    monitor.run(ctx, monitor.MonitorConfig(job_run_id="91"))

    kept = ctx.tables.read(table).select("job_run_id", "task").distinct().collect()
    assert sorted((r["job_run_id"], r["task"]) for r in kept) == [
        ("91", "monitor"),
        ("91", "score"),
    ]
