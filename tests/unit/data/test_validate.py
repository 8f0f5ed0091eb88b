"""The quality gate end to end on planted faults: quarantine, invariant, JSON, hard stop."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest
from data_support import bronze_frame, write_landing_file
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data import ingest
from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.validate import (
    BatchVerdict,
    DataQualityGateError,
    FileCounts,
    ValidateConfig,
    gate_message,
    run,
)
from demand_forecasting.platform.context import RunContext

RUN_MONTH = date(2015, 12, 1)
GOOD = [
    '"Tasmania","Liquor retailing","A1",2015-03-01,1.5',
    '"Tasmania","Food retailing","A2",2015-03-01,20',
    '"Victoria","Department stores","A3",2015-03-01,300.25',
    '"Victoria","Takeaway food services","A4",2015-03-01,45',
]
FAULTS = [
    '"Victoria","Liquor retailing","B1",2015-03-01,12;5',  # bad number
    '"Victoria","Food retailing","B2",2015-03-01,-4',  # negative target
    '"Tasmania","Clothing retailing","B3",03/2015,8',  # unknown month format
    '"Tasmania","Department stores","B4",2015-03-01,9',  # duplicate row ...
    '"Tasmania","Department stores","B4",2015-03-01,9',  # ... twice
]


def _land_and_ingest(ctx: RunContext, aus: DatasetConfig, name: str, lines: list[str]) -> None:
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, aus.name))
    write_landing_file(folder, name, lines)
    ingest.run(ctx, ingest.IngestConfig(aus))


def _count(ctx: RunContext, table: str) -> int:
    name = ctx.table(table)
    return ctx.tables.read(name).count() if ctx.tables.exists(name) else 0


def test_row_faults_go_to_quarantine_with_their_rule(ctx: RunContext, aus: DatasetConfig) -> None:
    _land_and_ingest(ctx, aus, "aus_retail_2015-03.csv", GOOD + FAULTS)

    done = run(ctx, ValidateConfig(aus, max_bad_row_share=0.6, run_month=RUN_MONTH))

    assert (done.rows_in, done.rows_out, done.rows_quarantined) == (9, 4, 5)
    quarantine = ctx.tables.read(ctx.table(names.QUARANTINE))
    reasons = sorted((r["series_id"], r["failed_rule"]) for r in quarantine.collect())
    assert reasons == [
        ("B1", "turnover_is_number"),
        ("B2", "turnover_in_range"),
        ("B3", "month_parses"),
        ("B4", "unique_series_month"),
        ("B4", "unique_series_month"),
    ]
    assert quarantine.where(F.col("batch_id").isNull()).count() == 0
    assert quarantine.first()["turnover"] is not None  # the row as it landed (text)
    # Invariant: every landed row is accepted or quarantined, none twice.
    assert _count(ctx, names.BRONZE) == _count(ctx, names.VALIDATED) + _count(ctx, names.QUARANTINE)
    accepted = ctx.tables.read(ctx.table(names.VALIDATED))
    assert sorted(r["series_id"] for r in accepted.collect()) == ["A1", "A2", "A3", "A4"]

    reports = list(Path(ctx.volume_path(names.QUALITY_VOLUME, aus.name)).glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["passed"] and (report["rows"], report["quarantined"]) == (9, 5)
    assert report["rule_counts"]["unique_series_month"] == 2
    ge = report["great_expectations"]
    assert ge["engine"] == "pandas" and ge["success"] is False
    assert len(ge["result"]["results"]) == ge["statistics"]["evaluated_expectations"]

    again = run(ctx, ValidateConfig(aus, max_bad_row_share=0.6, run_month=RUN_MONTH))
    assert again.verdicts == ()  # nothing new: nothing judged twice


def test_too_many_bad_rows_fail_the_task_and_change_no_table(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    _land_and_ingest(ctx, aus, "aus_retail_2015-03.csv", GOOD)
    run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    versions = {t: ctx.tables.version(ctx.table(t)) for t in (names.VALIDATED, names.QUARANTINE)}

    _land_and_ingest(
        ctx, aus, "aus_retail_2015-04.csv", [GOOD[0].replace("03-01", "04-01"), *FAULTS]
    )
    with pytest.raises(DataQualityGateError) as failure:
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))

    message = str(failure.value)
    assert "5 of 6 rows (83.3%)" in message and "more than the allowed 5.0%" in message
    assert "aus_retail_2015-04.csv: 5 of 6 rows bad" in message
    assert "turnover_is_number 1" in message and "unique_series_month 2" in message
    assert "No table was changed" in message
    assert {t: ctx.tables.version(ctx.table(t)) for t in versions} == versions

    # The batch is judged again next time; a one-off higher limit lets it through.
    done = run(ctx, ValidateConfig(aus, max_bad_row_share=1.0, run_month=RUN_MONTH))
    assert (done.rows_in, done.rows_quarantined) == (6, 5)


def test_a_corrected_landing_file_does_not_pass_a_refused_batch_and_the_message_says_so(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    # A month file cut mid-line: its batch is refused. The operator fixes the source and lands
    # the corrected file: the refused batch is still in bronze and is refused again, so the
    # message must not offer "fix the source" as a way on (it did).
    _land_and_ingest(ctx, aus, "aus_retail_2015-03.csv", [*GOOD, '"Tasmania","Food ret'])
    with pytest.raises(DataQualityGateError) as first:
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    _land_and_ingest(ctx, aus, "aus_retail_2015-03_correction.csv", GOOD)

    with pytest.raises(DataQualityGateError) as again:
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))

    for message in (str(first.value), str(again.value)):
        assert "aus_retail_2015-03.csv: 1 of 5 rows bad (row_parses 1" in message
        assert "correcting or replacing the landing file does not change the verdict" in message
        assert "fix the source" not in message
    done = run(ctx, ValidateConfig(aus, max_bad_row_share=0.2, run_month=RUN_MONTH))
    assert done.rows_quarantined == 1


def test_rows_after_the_run_month_are_quarantined(ctx: RunContext, aus: DatasetConfig) -> None:
    _land_and_ingest(
        ctx,
        aus,
        "aus_retail_2016-01_correction.csv",  # a correction may restate the month before
        [
            '"Tasmania","Liquor retailing","A1",2016-01-01,1.5',
            '"Tasmania","Liquor retailing","A1",2015-12-01,1.4',
        ],
    )
    done = run(ctx, ValidateConfig(aus, max_bad_row_share=0.5, run_month=RUN_MONTH))
    assert done.rows_quarantined == 1
    row = ctx.tables.read(ctx.table(names.QUARANTINE)).first()
    assert row["month"] == "2016-01-01" and row["failed_rule"] == "month_not_after_run_month"


def test_a_row_of_another_month_in_a_plain_month_file_is_quarantined_not_merged(
    ctx: RunContext, aus: DatasetConfig, caplog: pytest.LogCaptureFixture
) -> None:
    # The 2015-03 file with a row of 2015-01 (it would restate that month) and one of 2015-04.
    earlier = '"Tasmania","Liquor retailing","A1",2015-01-01,99'
    later = '"Tasmania","Liquor retailing","A1",2015-04-01,98'
    _land_and_ingest(ctx, aus, "aus_retail_2015-03.csv", [*GOOD, earlier, later])

    with pytest.raises(DataQualityGateError) as failure:  # 2 of 6 bad: over 5%
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    message = str(failure.value)
    assert (
        "aus_retail_2015-03.csv: 2 of 6 rows bad (month_not_after_file_month 1, "
        "month_not_before_file_month 1)"
    ) in message
    assert "aus_retail_2015-03.csv is the file of 2015-03 but has rows of 2015-01, 2015-04" in (
        message
    )
    assert "correction file of its own month (e.g. aus_retail_2015-01_correction.csv)" in message

    with caplog.at_level("WARNING", logger="demand_forecasting.data.validate"):
        done = run(ctx, ValidateConfig(aus, max_bad_row_share=0.5, run_month=RUN_MONTH))
    assert (done.rows_out, done.rows_quarantined) == (4, 2)
    assert "not merged as a restatement" in caplog.text
    quarantine = ctx.tables.read(ctx.table(names.QUARANTINE)).collect()
    assert sorted((r["month"], r["failed_rule"], r["source_file"][-22:]) for r in quarantine) == [
        ("2015-01-01", "month_not_before_file_month", "aus_retail_2015-03.csv"),
        ("2015-04-01", "month_not_after_file_month", "aus_retail_2015-03.csv"),
    ]
    accepted = ctx.tables.read(ctx.table(names.VALIDATED))
    assert accepted.where("month != '2015-03-01'").count() == 0

    # Landed as the message says, the restatement passes.
    _land_and_ingest(ctx, aus, "aus_retail_2015-01_correction.csv", [earlier])
    fixed = run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    assert (fixed.rows_out, fixed.rows_quarantined) == (1, 0)


def test_a_month_that_does_not_parse_is_named_with_its_file_value_format_and_fix(
    ctx: RunContext, aus: DatasetConfig, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [
        '"Tasmania","Liquor retailing","B1",03/2015,8',
        '"Tasmania","Food retailing","B2",Mar 2015,9',
    ]
    _land_and_ingest(ctx, aus, "aus_retail_2015-03.csv", [*GOOD, *bad])

    with pytest.raises(DataQualityGateError) as failure:  # 2 of 6 bad: over 5%
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    with caplog.at_level("WARNING", logger="demand_forecasting.data.validate"):
        done = run(ctx, ValidateConfig(aus, max_bad_row_share=0.5, run_month=RUN_MONTH))

    assert done.rows_quarantined == 2
    named = (
        f"month_parses: the month of rows does not parse as {aus.month_format!r} (month.format "
        "of dataset config 'aus_retail'): aus_retail_2015-03.csv: 2 row(s) with month "
        "'03/2015', 'Mar 2015' (correction file e.g. aus_retail_2015-03_correction.csv)"
    )
    for message in (str(failure.value), caplog.text):
        assert named in message
        assert f"Land them again with month written as {aus.month_format!r}" in message


def test_gate_message_names_files_rules_and_counts() -> None:
    verdict = BatchVerdict(
        (
            FileCounts("f1.csv", 10, 0, {"turnover_in_range": 0}, (1,)),
            FileCounts("f2.csv", 10, 4, {"turnover_in_range": 3, "month_parses": 1}, (1,)),
        ),
        max_bad_row_share=0.1,
    )
    assert not verdict.passed and verdict.bad_share == 0.2
    message = gate_message(verdict, verdict.bronze_batches(), "report.json")
    assert "4 of 20 rows (20.0%) of bronze batch(es) 1" in message
    assert "f2.csv: 4 of 10 rows bad (turnover_in_range 3, month_parses 1)" in message
    assert "f1.csv" not in message and "report.json" in message


@pytest.mark.parametrize(("bad", "limit"), [(4, "0.2"), (6, "0.3"), (7, "0.35"), (20, "1")])
def test_gate_message_suggests_a_limit_that_lets_the_batch_through(bad: int, limit: str) -> None:
    # 7 of 20 rows bad (35%): the one-off limit the message suggests must let these rows
    # through (it said 0.2 whatever the share, so following it failed the run again).
    verdict = BatchVerdict(
        (FileCounts("f.csv", 20, bad, {"turnover_in_range": bad}, (1,)),), max_bad_row_share=0.05
    )
    message = gate_message(verdict, verdict.bronze_batches(), "report.json")
    assert f"`demand-forecasting run monthly --var max_bad_row_share={limit}`" in message
    assert f"deploy with `--var max_bad_row_share={limit}`" in message
    assert dataclasses.replace(verdict, max_bad_row_share=float(limit)).passed


def test_values_the_config_does_not_list_are_named_with_the_config_key_to_extend(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    rows = [*GOOD, *(line.replace('"Victoria"', '"Tasmanya"') for line in GOOD[2:])]
    _land_and_ingest(ctx, aus, "aus_retail_2015-03.csv", rows)
    with pytest.raises(DataQualityGateError) as failure:
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))

    message = str(failure.value)
    assert "known_state 2" in message
    assert (
        "known_state: state values that dataset config 'aus_retail' does not list (e.g. "
        "'Tasmanya'); if they are real, add them to segment.known_values.state" in message
    )


def test_max_bad_row_share_must_be_a_share(aus: DatasetConfig) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        ValidateConfig(aus, max_bad_row_share=5)


def _land_cut_file(ctx: RunContext, aus: DatasetConfig, name: str, lines: list[str]) -> None:
    """Land ``lines`` with the last one cut: no line break after it, as a copy cut short."""
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, aus.name))
    path = write_landing_file(folder, name, lines)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    ingest.run(ctx, ingest.IngestConfig(aus))


def test_the_last_row_of_a_file_cut_short_is_quarantined_and_the_rows_before_pass(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    # 193.5 cut to 19, the rest of the file lost: the 19 must not pass as a value.
    cut = '"Tasmania","Liquor retailing","A3349764R",2015-03-01,19'
    _land_cut_file(ctx, aus, "aus_retail_2015-03.csv", [*GOOD, cut])

    with pytest.raises(DataQualityGateError) as failure:  # 1 of 5 bad: over 5%
        run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    message = str(failure.value)
    assert "aus_retail_2015-03.csv: 1 of 5 rows bad (row_complete 1)" in message
    assert "the last line of aus_retail_2015-03.csv has no line break" in message
    assert "a complete file ends with a line break" in message
    assert "aus_retail_2015-03_correction.csv" in message

    done = run(ctx, ValidateConfig(aus, max_bad_row_share=0.2, run_month=RUN_MONTH))
    assert (done.rows_in, done.rows_out, done.rows_quarantined) == (5, 4, 1)
    row = ctx.tables.read(ctx.table(names.QUARANTINE)).collect()[0]
    assert (row["series_id"], row["turnover"], row["failed_rule"]) == (
        "A3349764R",
        "19",
        "row_complete",
    )
    assert row["line_terminated"] is False
    accepted = ctx.tables.read(ctx.table(names.VALIDATED))
    assert sorted(r["series_id"] for r in accepted.collect()) == ["A1", "A2", "A3", "A4"]

    # The row landed again in a complete correction file passes.
    _land_and_ingest(ctx, aus, "aus_retail_2015-03_correction.csv", [cut.replace(",19", ",193.5")])
    fixed = run(ctx, ValidateConfig(aus, max_bad_row_share=0.05, run_month=RUN_MONTH))
    assert (fixed.rows_out, fixed.rows_quarantined) == (1, 0)


def test_tables_written_before_line_terminated_existed_get_it(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    # Bronze and quarantine as an older version wrote them (no line_terminated), with a bronze
    # batch not judged yet: it is judged as before, and the new column reaches both tables.
    row = {"state": "Tasmania", "industry": "Liquor retailing", "month": "2015-02-01"}
    old = bronze_frame(
        ctx.spark,
        aus,
        [
            {**row, "series_id": "OLD1", "turnover": "5"},
            {**row, "series_id": "OLD2", "turnover": "n/a"},
        ],
        source_file="file:/landing/aus_retail_2015-02.csv",
    ).drop("line_terminated")
    ctx.tables.write(old, ctx.table(names.BRONZE))
    quarantined = old.where(F.col("series_id") == "OLD2").select(
        "*",
        F.lit("turnover_is_number").alias("failed_rule"),
        F.array(F.lit("turnover_is_number")).alias("failed_rules"),
        F.current_timestamp().alias("validated_at"),
    )
    ctx.tables.write(quarantined, ctx.table(names.QUARANTINE))

    first = run(ctx, ValidateConfig(aus, max_bad_row_share=1.0, run_month=RUN_MONTH))
    assert first.rows_quarantined == 1
    # The stream that read bronze before the column existed reads on after ingest adds it.
    _land_cut_file(ctx, aus, "aus_retail_2015-03.csv", [*GOOD, GOOD[0].replace("A1", "A9")])
    assert ctx.tables.read(ctx.table(names.BRONZE)).columns == ingest.bronze_columns(aus)
    second = run(ctx, ValidateConfig(aus, max_bad_row_share=1.0, run_month=RUN_MONTH))

    assert (second.rows_in, second.rows_quarantined) == (5, 1)
    quarantine = ctx.tables.read(ctx.table(names.QUARANTINE))
    rows = sorted(
        (r["series_id"], r["failed_rule"], r["line_terminated"]) for r in quarantine.collect()
    )
    assert rows == [
        ("A9", "row_complete", False),
        ("OLD2", "turnover_is_number", None),
        ("OLD2", "turnover_is_number", None),
    ]
