"""The run report: Markdown with its plots, from small frames."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd

from demand_forecasting.monitoring.accuracy import AccuracyAlert
from demand_forecasting.monitoring.monitor import new_champions
from demand_forecasting.monitoring.report import (
    FORECAST_FILE,
    HEATMAP_FILE,
    TASK_TIME_FILE,
    ReportInputs,
    decisions_table,
    pinned_approval,
    write_report,
)

JAN, FEB = date(2016, 1, 1), date(2016, 2, 1)


def _inputs() -> ReportInputs:
    drift = pd.DataFrame(
        [
            ("food", "y", 0.05, 1.2, False, "keep"),
            ("food", "lag_1", 0.02, 1.2, False, "keep"),
            ("cafes", "y", 3.5, 1.2, True, "retrain_drift"),
            ("cafes", "lag_1", 0.4, 1.2, False, "retrain_drift"),
            ("other", None, None, None, None, "retrain_no_champion"),
        ],
        columns=["segment", "feature", "psi", "psi_critical", "breach", "decision"],
    )
    months = pd.date_range("2014-01-01", "2016-01-01", freq="MS").date
    actuals = pd.DataFrame(
        [(s, m, 100.0 + i) for s in ("food", "cafes") for i, m in enumerate(months)],
        columns=["segment", "month", "y"],
    )
    forecasts = pd.DataFrame(
        [(s, f"{s}1", FEB, 1, 120.0, "2") for s in ("food", "cafes")],
        columns=["segment", "series_id", "month", "horizon", "forecast", "model_version"],
    )
    return ReportInputs(
        run_month=JAN,
        target="dev",
        job_run_id="42",
        generated_at=datetime(2016, 2, 3, tzinfo=timezone.utc),
        series_forecast=2,
        segments_without_champion=["other"],
        drift=drift,
        accuracy=pd.DataFrame(
            {
                "segment": ["food"],
                "wape": [0.3],
                "bias": [0.1],
                "first_month": [JAN],
                "last_month": [JAN],
            }
        ),
        alerts=[AccuracyAlert("food", 0.3, 0.1, JAN, JAN, 0.15)],
        forecasts=forecasts,
        past_forecasts=pd.DataFrame({"segment": ["food"], "month": [JAN], "forecast": [99.0]}),
        actuals=actuals,
        telemetry=pd.DataFrame(
            {
                "task": ["check_drift", "score"],
                "status": ["SUCCESS"] * 2,
                "duration_s": [4.2, 6.1],
                "rows_in": [100, 200],
                "rows_out": [40, 24],
                "peak_memory_mb": [900.0, 950.0],
            }
        ),
        new_champions={"cafes": "v1 -> v2"},
        segments_on_fallback=["food"],
    )


def test_report_has_every_section_and_plot(tmp_path: Path) -> None:
    path = write_report(tmp_path / "2016-01", _inputs())

    text = path.read_text()
    for heading in (
        "# Monthly forecasting run 2016-01 (dev)",
        "## Summary",
        "## Retraining decisions",
        "## Drift",
        "## Accuracy",
        "## Forecasts vs actuals",
        "## Time per task",
    ):
        assert heading in text
    assert "**2 series forecast**" in text
    assert "cafes (v1 -> v2)" in text
    assert "seasonal-naive fallback (their model did not beat it): food." in text
    assert "**ALERT** food: WAPE 30.0%" in text
    # The forecast chart says which segments it draws and why (the alert first).
    assert "Segment totals of 2 of 2 segments, chosen in this order" in text
    assert "largest by volume: food, cafes." in text
    for image in (HEATMAP_FILE, FORECAST_FILE, TASK_TIME_FILE):
        assert f"]({image})" in text
        assert (path.parent / image).stat().st_size > 1000


def test_with_many_segments_lists_and_tables_are_cut_and_say_where_the_rest_is(
    tmp_path: Path,
) -> None:
    segments = [f"s{i:02d}" for i in range(30)]
    inputs = _inputs()
    inputs.drift = pd.DataFrame(
        [(s, None, None, None, None, "retrain_no_champion") for s in segments]
        + [("cafes", "y", 3.5, 1.2, True, "retrain_drift")],
        columns=["segment", "feature", "psi", "psi_critical", "breach", "decision"],
    )
    inputs.accuracy = pd.DataFrame(
        {"segment": segments, "wape": [i / 100 for i in range(30)], "bias": [0.0] * 30}
    )
    inputs.new_champions = {s: "new v1" for s in segments}
    inputs.segments_on_fallback = segments[:13]
    inputs.segments_without_champion = segments[:14]

    text = write_report(tmp_path / "2016-01", inputs).read_text()

    assert "New champions since the previous run (30): s00 (new v1), " in text
    assert "s11 (new v1) and 18 more (the model_audit table has every promotion)." in text
    assert "s11 and 1 more (their champion versions carry the tag fallback)." in text
    # The drift table keeps a rerun month's first decisions, so it is no list of the
    # segments without a champion; the monitor task's log (or error) names them all.
    assert "s11 and 2 more (the monitor task's log names them all)." in text
    decisions = text.split("## Retraining decisions")[1].split("## Drift")[0]
    assert decisions.count("| retrain_") == 20
    assert decisions.index("| cafes | retrain_drift | y |") < decisions.index("| s00 |")
    assert "_... 11 more rows: the drift_psi table has them all._" in decisions
    accuracy = text.split("## Accuracy")[1].split("## Forecasts")[0]
    assert "| s29 | 29.0% |" in accuracy and "| s10 | 10.0% |" in accuracy
    assert "| s09 |" not in accuracy
    assert "_... 10 more rows: the worst are above; the forecast_accuracy table" in accuracy


def test_the_data_quality_section_lists_the_newest_quarantined_files(tmp_path: Path) -> None:
    clean = write_report(tmp_path / "clean", _inputs()).read_text()
    inputs = _inputs()
    inputs.quarantined_rows = 61
    inputs.quarantine = pd.DataFrame(
        {
            "source_file": ["aus_retail_2016-01.csv", "aus_retail_2015-07.csv"],
            "rows": [59, 2],
            "rules": ["turnover_is_number", "month_not_after_file_month, turnover_not_negative"],
            "validated_at": ["2016-02-03 06:01", "2015-08-03 06:02"],
        }
    )

    text = write_report(tmp_path / "bad", inputs).read_text()

    assert "## Data quality" in clean and "No row has been quarantined" in clean
    section = text[text.index("## Data quality") : text.index("## Retraining decisions")]
    assert "61 row(s) that broke a rule" in section
    assert "| aus_retail_2016-01.csv | 59 | turnover_is_number | 2016-02-03 06:01 |" in section
    assert "latest load wins" in section


def test_the_data_quality_section_says_how_many_quarantined_rows_were_corrected(
    tmp_path: Path,
) -> None:
    inputs = _inputs()
    inputs.quarantined_rows, inputs.quarantined_corrected = 61, 59
    inputs.quarantine = pd.DataFrame(
        {
            "source_file": ["aus_retail_2016-01.csv", "aus_retail_2015-07.csv"],
            "rows": [59, 2],
            "corrected": [59, 0],
            "rules": ["turnover_is_number", "row_complete"],
            "validated_at": ["2016-02-03 06:01", "2015-08-03 06:02"],
        }
    )

    text = write_report(tmp_path / "some", inputs).read_text()

    section = text[text.index("## Data quality") : text.index("## Retraining decisions")]
    assert "61 row(s) that broke a rule" in section and "59 of them have been corrected" in section
    assert "| aus_retail_2016-01.csv | 59 | 59 | turnover_is_number |" in section
    assert "The 2 row(s) not corrected still need a correction file" in section
    inputs.quarantined_corrected = 61
    text = write_report(tmp_path / "all", inputs).read_text()
    assert "Every quarantined row has been corrected: no correction file is needed." in text
    assert "still need a correction file" not in text


def test_the_data_quality_section_names_months_series_have_no_value_in(tmp_path: Path) -> None:
    # The file of 2015-11 never arrived: every series has a gap row there. Nothing was
    # quarantined, and the report said only that (a missing month was said nowhere).
    inputs = _inputs()
    inputs.gaps = pd.DataFrame(
        {"month": [date(2015, 11, 1), date(2015, 8, 1)], "gaps": [16, 1], "series": [16, 17]}
    )

    text = write_report(tmp_path / "gaps", inputs).read_text()

    section = text[text.index("## Data quality") : text.index("## Retraining decisions")]
    assert "No row has been quarantined" in section
    assert "**Months without a value**" in section
    assert "2015-08 (1 of 17 series), 2015-11 (16 of 16 series)" in section
    assert "Months without a value" not in write_report(tmp_path / "none", _inputs()).read_text()


def test_report_without_forecasts_or_telemetry_still_renders(tmp_path: Path) -> None:
    inputs = _inputs()
    inputs.forecasts = inputs.forecasts.iloc[0:0]
    inputs.telemetry = inputs.telemetry.iloc[0:0]
    text = write_report(tmp_path, inputs).read_text()
    assert "_no forecasts_" in text
    assert not (tmp_path / TASK_TIME_FILE).exists()


def test_decisions_list_changed_segments_with_their_breaching_features() -> None:
    table = decisions_table(_inputs().drift)
    assert table["segment"].tolist() == ["cafes", "other"]
    assert table.loc[0, "breaching features"] == "y"
    assert table.loc[1, "decision"] == "retrain_no_champion"


def test_new_champions_compare_this_run_month_with_the_previous_one() -> None:
    versions = pd.DataFrame(
        [
            ("food", date(2015, 12, 1), "1"),
            ("cafes", date(2015, 12, 1), "1"),
            ("food", JAN, "1"),
            ("cafes", JAN, "2"),
            ("other", JAN, "1"),
        ],
        columns=["segment", "run_month", "model_version"],
    )
    assert new_champions(versions, JAN) == {"cafes": "v1 -> v2", "other": "new v1"}
    first = versions[versions["run_month"] == JAN]
    assert new_champions(first, JAN) == {"food": "new v1", "cafes": "new v2", "other": "new v1"}


def test_largest_psi_values_list_ties_by_segment_whatever_the_row_order(tmp_path: Path) -> None:
    inputs = _inputs()
    tied = pd.DataFrame(
        [(s, "y", 2.0, 3.6, False, "keep") for s in ("victoria", "nsw", "qld")],
        columns=inputs.drift.columns,
    )
    inputs.drift = pd.concat([tied, inputs.drift], ignore_index=True)
    text = write_report(tmp_path, inputs).read_text()
    listed = [line.split(" | ")[0].strip("| ") for line in text.splitlines() if "| 2.000 |" in line]
    assert listed == ["nsw", "qld", "victoria"]


def test_segments_forecasting_another_horizon_are_listed_with_why(tmp_path: Path) -> None:
    inputs = _inputs()
    inputs.horizon = 18
    inputs.segments_off_horizon = {"cafes": 12}

    text = write_report(tmp_path / "2016-01", inputs).read_text()

    assert "- Segments forecasting another number of months than the horizon (18): " in text
    assert "cafes (12). Their champion was trained for that horizon" in text
    assert "decision retrain_horizon" in text
    inputs.segments_off_horizon = {}
    assert "another number of months" not in write_report(tmp_path / "b", inputs).read_text()


def test_the_advice_for_a_row_of_an_earlier_month_names_a_correction_file_of_its_month(
    tmp_path: Path,
) -> None:
    # The 2016-03 file held a row of 2016-01: a correction file of 2016-03 would be refused
    # again (a correction file holds its month and earlier ones, and this row would restate
    # 2016-01 from a file about 2016-03); it belongs in one of 2016-01. The report said "a
    # new file of the month".
    inputs = _inputs()
    inputs.quarantined_rows = 3
    inputs.quarantine = pd.DataFrame(
        {
            "source_file": ["aus_retail_2016-03.csv", "aus_retail_2016-02.csv"],
            "rows": [2, 1],
            "rules": ["month_not_before_file_month, turnover_is_number", "month_parses"],
            "validated_at": ["2016-04-03 06:01", "2016-03-03 06:02"],
        }
    )
    inputs.quarantine_row_months = {"aus_retail_2016-03.csv": ["2016-01"]}
    inputs.month_format = "yyyy-MM-dd"

    text = write_report(tmp_path, inputs).read_text()

    section = text[text.index("## Data quality") : text.index("## Retraining decisions")]
    assert "new file of the month" not in section
    assert (
        "- `month_not_before_file_month`: a plain month file holds rows of an earlier month, "
        "which only a correction file may restate: land each row in a correction file of the "
        "row's own month (`<file_prefix>_<row's YYYY-MM>_correction.csv`), not of the file's: "
        "`aus_retail_2016-03.csv` has rows of 2016-01: land them in "
        "`aus_retail_2016-01_correction.csv`." in section
    )
    assert (
        "- `turnover_is_number`: turnover is not a plain decimal number (no thousands "
        "separator, decimal comma or n/a): land the rows with the number written plainly in a "
        "correction file of the month of the file they came in (e.g. "
        "`aus_retail_2016-03_correction.csv`)." in section
    )
    assert "- `month_parses`: the month text does not parse as `yyyy-MM-dd`" in section
    assert "(e.g. `aus_retail_2016-02_correction.csv`)" in section


def _decided(drift: pd.DataFrame, runs: dict[str, tuple[str | None, str]]) -> pd.DataFrame:
    """``drift`` with the job run and time that decided each segment."""
    return drift.assign(
        decided_by_job_run=drift["segment"].map(lambda s: runs[s][0]),
        decided_at=pd.to_datetime(drift["segment"].map(lambda s: runs[s][1]), utc=True),
    )


def test_a_reruns_report_says_whose_decisions_it_shows_and_that_it_retrained_nothing(
    tmp_path: Path,
) -> None:
    # Job run 41 retrained cafes (drift) and other (no champion); job run 42 reruns the month:
    # check_drift keeps their rows (already retrained) and decides food again. The report
    # showed 41's decisions as the rerun's own.
    inputs = _inputs()
    inputs.drift = _decided(
        inputs.drift,
        {
            "food": ("42", "2016-02-04 07:00"),
            "cafes": ("41", "2016-02-03 06:00"),
            "other": ("41", "2016-02-03 06:00"),
        },
    )

    text = write_report(tmp_path / "rerun", inputs).read_text()  # train did not run in 42

    section = text[text.index("## Retraining decisions") : text.index("## Drift")]
    assert "**This job run (`42`) is a rerun of 2016-01.**" in section
    assert "The decisions of 2 segment(s) are an earlier run's, kept: job run `41` at " in section
    assert "2016-02-03 06:00 UTC (2)" in section
    assert "This job run decided the other 1 segment(s) itself." in section
    assert (
        "This rerun retrained nothing: the 2 segment(s) the kept decisions sent to retraining "
        "had been retrained (or refused) this month already." in section
    )
    assert "| cafes | retrain_drift | y | 3.50 | 41 |" in section
    assert (
        "- Retraining decisions: keep 1, retrain_drift 1, retrain_no_champion 1 (2 of them "
        "kept from job run `41` at 2016-02-03 06:00 UTC; this rerun retrained nothing)." in text
    )

    # The month's first run: its own decisions, and no column naming the run.
    inputs.drift = _decided(
        inputs.drift, {s: ("42", "2016-02-04 07:00") for s in ("food", "cafes", "other")}
    )
    first = write_report(tmp_path / "first", inputs).read_text()
    assert "Decided by this job run's check_drift (job run `42` at 2016-02-04 07:00 UTC)." in first
    assert "rerun" not in first and "decided by job run" not in first


def test_a_rerun_that_trained_says_what_it_trained(tmp_path: Path) -> None:
    inputs = _inputs()
    inputs.drift = _decided(
        inputs.drift,
        {
            "food": ("42", "2016-02-04"),
            "cafes": ("41", "2016-02-03"),
            "other": ("42", "2016-02-04"),
        },
    )
    inputs.telemetry = pd.DataFrame(
        {
            "task": ["check_drift", "train"],
            "status": ["SUCCESS"] * 2,
            "duration_s": [4.2, 30.0],
            "segment_seconds": [None, {"other": 20.0}],
        }
    )

    text = write_report(tmp_path, inputs).read_text()

    assert "This rerun retrained 1 segment(s): other." in text
    assert "this rerun retrained 1: other)" in text


def test_many_versions_awaiting_get_the_short_approval_form_only() -> None:
    # 300 segments' pinned list would be ~12,000 bytes: over the job parameter limit.
    awaiting = pd.DataFrame({"segment": [f"segment_{i:03d}" for i in range(300)], "version": "7"})
    many = "\n".join(pinned_approval(awaiting, "--catalog main", JAN))
    few = "\n".join(pinned_approval(awaiting.head(2), "", JAN))
    unrecorded = "\n".join(pinned_approval(awaiting.head(2)))

    assert "segment_000=7" not in many
    assert "set `segments` to `reported:2016-01`" in many
    assert "`demand-forecasting approve --as-reported 2016-01 --catalog main --reason ...`" in many
    assert "To approve only some, set `segments` to their `segment=version` pairs" in many
    assert "`segment_000=7,segment_001=7`" in few and "`reported:2016-01`" in few
    assert "`segment_000=7,segment_001=7`" in unrecorded and "reported:" not in unrecorded
