"""Each data-quality rule on planted faults, and the GE suite agreeing with the Spark rules."""

from __future__ import annotations

import dataclasses
from datetime import date

import pandas as pd
import pytest
from data_support import bronze_frame
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from demand_forecasting.data import expectations
from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.expectations import (
    SuiteMismatchError,
    SuiteResult,
    check_agreement,
    run_suite,
)
from demand_forecasting.data.ingest import bronze_columns
from demand_forecasting.data.landing import parse_months
from demand_forecasting.data.rules import (
    FAILED_RULES,
    accepted_rows,
    build_rules,
    judge,
    quarantined_rows,
    segment_column,
)
from demand_forecasting.data.validate import file_counts

RUN_MONTH = date(2015, 12, 1)
GOOD = {
    "state": "New South Wales",
    "industry": "Liquor retailing",
    "series_id": "A1",
    "month": "2015-01-01",
    "turnover": "10.5",
}
#: label -> (what differs from a good row, the rules the row must break)
CASES: dict[str, tuple[dict[str, str | None], list[str]]] = {
    "good": ({}, []),
    "good, spaces around values": ({"state": " Victoria ", "turnover": " 7 "}, []),
    "bad number": ({"turnover": "12,5"}, ["turnover_is_number"]),
    "not a number at all": ({"turnover": "n/a"}, ["turnover_is_number"]),
    "negative target": ({"turnover": "-3"}, ["turnover_in_range"]),
    "infinite target": ({"turnover": "1e999"}, ["turnover_in_range"]),
    "missing target": ({"turnover": None}, ["not_null_turnover"]),
    "unknown month format": ({"month": "01/2015"}, ["month_parses"]),
    "month not on grain": ({"month": "2015-01-15"}, ["month_on_grain"]),
    "month after the run month": (
        {"month": "2016-01-01"},
        ["month_not_after_run_month", "month_not_after_file_month"],
    ),
    # A typo in one row of the 2015-01 file: before the run month, but not that file's month.
    "month after its file's month": ({"month": "2015-02-01"}, ["month_not_after_file_month"]),
    # The same in a correction file: a later month is still another file's.
    "month after its correction file's month": (
        {"month": "2015-02-01", "source_file": "file:/landing/aus_retail_2015-01_correction.csv"},
        ["month_not_after_file_month"],
    ),
    # A correction file may restate earlier months; a plain month file may not.
    "earlier month in a correction file": (
        {"month": "2014-12-01", "source_file": "file:/landing/aus_retail_2015-01_correction.csv"},
        [],
    ),
    "earlier month in a plain month file": (
        {"month": "2014-12-01"},
        ["month_not_before_file_month"],
    ),
    "file not named by month": (
        {"month": "2015-06-01", "source_file": "file:/landing/erp_export.csv"},
        [],
    ),
    "missing month": ({"month": ""}, ["not_null_month"]),
    "unknown state": ({"state": "Atlantis"}, ["known_state"]),
    "unknown industry": ({"industry": "Space tourism"}, ["known_industry"]),
    "blank key": ({"state": "   "}, ["not_null_state"]),
    "missing series id": ({"series_id": None}, ["not_null_series_id"]),
    "unparseable line": ({"_rescued_data": "NSW,x,A1,2015-01-01,1,2"}, ["row_parses"]),
    # The last line of a file cut short (no line break): "19" may be 193.5 cut mid-number.
    "last line without a line break": (
        {"turnover": "19", "line_terminated": "false"},
        ["row_complete"],
    ),
    "cut mid-row": (
        {"turnover": None, "_rescued_data": "NSW,x,A1", "line_terminated": "false"},
        ["row_complete", "row_parses", "not_null_turnover"],
    ),
    "ingested before line_terminated existed": ({"line_terminated": None}, []),
    "two faults": (
        {"turnover": "-1", "month": "2015-01-02"},
        ["turnover_in_range", "month_on_grain"],
    ),
}


def _planted_rows() -> list[dict[str, str | None]]:
    rows = []
    for index, (changes, _) in enumerate(CASES.values()):
        rows.append({**GOOD, "series_id": f"S{index}", **changes})
    duplicate = {**GOOD, "series_id": "DUP"}
    # The same series and month in an original file and its correction, landed together.
    resent = {**GOOD, "series_id": "RESENT"}
    correction = {**resent, "source_file": "file:/landing/aus_retail_2015-01_correction.csv"}
    return [*rows, duplicate, dict(duplicate), resent, correction]


def _label_of(series_id: str | None) -> str:
    if series_id is None:
        return "missing series id"
    if series_id == "DUP":
        return "duplicate row"
    if series_id == "RESENT":
        return "resent in a correction file"
    return list(CASES)[int(series_id[1:])]


@pytest.fixture(scope="module")
def judged(spark: SparkSession, aus: DatasetConfig) -> DataFrame:
    bronze = bronze_frame(spark, aus, _planted_rows())
    return judge(bronze, aus, build_rules(aus, RUN_MONTH)).cache()


def test_each_planted_fault_breaks_exactly_its_rule(judged: DataFrame) -> None:
    verdicts = {}
    for row in judged.select("series_id", "_failed_rules").collect():
        verdicts.setdefault(_label_of(row["series_id"]), []).append(list(row["_failed_rules"]))
    for label, (_, expected) in CASES.items():
        assert verdicts[label] == [expected], label
    assert verdicts["duplicate row"] == [["unique_series_month"], ["unique_series_month"]]
    # Across files each row is valid; silver keeps the correction's.
    assert verdicts["resent in a correction file"] == [[], []]


def test_every_rule_is_exercised(aus: DatasetConfig) -> None:
    planted = {rule for _, broken in CASES.values() for rule in broken} | {"unique_series_month"}
    planted |= {"not_null_industry"}  # the only rule without its own case: same as state's
    assert {r.name for r in build_rules(aus, RUN_MONTH)} - planted == set()


def test_accepted_rows_are_typed_and_canonical(judged: DataFrame, aus: DatasetConfig) -> None:
    accepted = accepted_rows(judged, aus)
    assert accepted.columns == [
        "series_id",
        "state",
        "industry",
        "segment",
        "month",
        "y",
        "batch_id",
        "source_file",
        "load_time",
    ]
    types = dict(accepted.dtypes)
    assert (types["month"], types["y"]) == ("date", "double")
    collected = accepted.collect()
    rows = {r["series_id"]: r for r in collected}
    # Every good case, and RESENT once from each of its two files.
    assert len(collected) == sum(1 for _, broken in CASES.values() if not broken) + 2
    good = rows["S0"]
    assert good["month"] == date(2015, 1, 1) and good["y"] == 10.5
    assert good["segment"] == "new_south_wales__food_retailing"
    assert rows["S1"]["state"] == "Victoria" and rows["S1"]["y"] == 7.0


def test_quarantined_rows_keep_the_landed_text_and_name_the_rule(
    judged: DataFrame, aus: DatasetConfig
) -> None:
    bad = quarantined_rows(judged, bronze_columns(aus), F.current_timestamp())
    planted = [f"S{list(CASES).index(label)}" for label in ("bad number", "two faults")]
    rows = {r["turnover"]: r for r in bad.where(F.col("series_id").isin(planted)).collect()}
    assert rows["12,5"]["failed_rule"] == "turnover_is_number"
    assert rows["-1"]["failed_rules"] == ["turnover_in_range", "month_on_grain"]
    faults = sum(1 for _, broken in CASES.values() if broken)
    assert bad.count() == faults + 2  # every planted fault, both duplicate copies


def test_spark_segment_matches_the_config(spark: SparkSession, aus: DatasetConfig) -> None:
    combos = [
        {**GOOD, "state": s, "industry": i}
        for s in aus.known_values["state"]
        for i in aus.groups[0].group_of()
    ]
    frame = judge(bronze_frame(spark, aus, combos), aus, build_rules(aus, RUN_MONTH))
    got = {(r["_text_state"], r["_text_industry"]): r["_segment"] for r in frame.collect()}
    assert got == {(c["state"], c["industry"]): aus.segment_of(c) for c in combos}
    assert segment_column(aus) is not None


@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_great_expectations_agrees_with_every_rule(
    judged: DataFrame, aus: DatasetConfig, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "spark":
        monkeypatch.setattr(expectations, "PANDAS_MAX_ROWS", 0)
    rules = build_rules(aus, RUN_MONTH)
    counts: dict[str, int] = {}
    for file in file_counts(judged, rules):  # the planted rows come from three files
        for rule, n in file.by_rule.items():
            counts[rule] = counts.get(rule, 0) + n
    suite = run_suite(judged, rules, bronze_columns(aus), "aus_retail_bronze", judged.count())

    assert suite.engine == engine
    check_agreement(suite, counts)  # raises if GE and the Spark rules disagree
    assert not suite.success
    assert suite.unexpected["unique_series_month"] == 2
    assert suite.unexpected["turnover_is_number"] == 2
    assert suite.unexpected["month_not_before_file_month"] == 1
    assert suite.statistics["evaluated_expectations"] == len(rules) + 1
    assert suite.result_json["results"]


def test_a_disagreement_stops_the_run() -> None:
    suite = SuiteResult(False, "pandas", {"turnover_in_range": 3}, {}, {})
    with pytest.raises(SuiteMismatchError, match="turnover_in_range: Spark rule failed 2 row"):
        check_agreement(suite, {"turnover_in_range": 2})


#: Month texts under ``yyyy MMM`` -> the month they are (None: the row breaks month_parses).
NAMED_MONTHS: dict[str, date | None] = {
    "1991 Jul": date(1991, 7, 1),
    "1991 Sept": date(1991, 9, 1),  # the PBS package's September
    "1991 Sep": date(1991, 9, 1),
    "1991 SEPTEMBER": date(1991, 9, 1),
    "1991 may": date(1991, 5, 1),
    " 1991 Dec ": date(1991, 12, 1),
    "1991 Jly": None,  # no such name
    "1991 Julyy": None,  # a name inside a longer word is none
    "1991 07": None,  # a number where the format says a name
    "1991-Jul": None,  # not the format's separator
    "Juli 1991": None,
}


def test_a_month_name_format_reads_the_same_months_in_landing_spark_and_ge(
    spark: SparkSession, aus: DatasetConfig
) -> None:
    named = dataclasses.replace(aus, month_format="yyyy MMM")
    rows = [{**GOOD, "series_id": f"N{i}", "month": text} for i, text in enumerate(NAMED_MONTHS)]
    bronze = bronze_frame(spark, named, rows, source_file="file:/landing/erp_export.csv")
    rules = build_rules(named, date(1991, 12, 1))
    judged = judge(bronze, named, rules).cache()

    by_text = {r["month"]: r for r in judged.select("month", "_month", FAILED_RULES).collect()}
    assert {t: r["_month"] for t, r in by_text.items()} == NAMED_MONTHS
    for text, month in NAMED_MONTHS.items():  # a month that does not parse, by its rule
        assert by_text[text][FAILED_RULES] == ([] if month else ["month_parses"]), text
    # Landing reads exactly the same months (it would otherwise land what the gate refuses).
    landed = parse_months(pd.Series(list(NAMED_MONTHS)), "yyyy MMM")
    assert [None if pd.isna(m) else m.date() for m in landed] == list(NAMED_MONTHS.values())
    # The suite of record counts the same rows as the Spark rule.
    suite = run_suite(judged, rules, bronze_columns(named), "named_bronze", judged.count())
    check_agreement(suite, {"month_parses": 5})
    assert suite.unexpected["month_parses"] == 5
    reason = next(r.description for r in rules if r.name == "month_parses")
    assert reason.startswith("month parses as yyyy MMM (an English month name") and "Sept" in reason
