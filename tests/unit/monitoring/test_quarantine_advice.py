"""What the report tells operators to land for quarantined rows, for every rule there is."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import SparkSession

from demand_forecasting.data.config import load_dataset_config
from demand_forecasting.data.rules import build_rules
from demand_forecasting.monitoring.quarantine_advice import (
    EARLIER_MONTH_RULE,
    advice_lines,
    correction_file,
    rule_advice,
)

FILE = "aus_retail_2016-03.csv"
OWN_MONTH, FILES_MONTH = "aus_retail_2016-01_correction.csv", "aus_retail_2016-03_correction.csv"
#: Rules whose row may really be of a later month than the file: landed in that month's file.
LATER_MONTH_RULES = {"month_not_after_run_month", "month_not_after_file_month"}


@pytest.mark.parametrize("dataset", ["aus_retail", "aus_retail_small"])
def test_every_rule_has_its_own_advice_naming_the_right_months_correction_file(
    spark: SparkSession, dataset: str
) -> None:
    config = load_dataset_config(dataset)
    rules = [r.name for r in build_rules(config, date(2016, 3, 1))]
    generic = rule_advice("no_such_rule", [FILE])

    for rule in rules:
        advice = rule_advice(rule, [FILE], {FILE: ["2016-01"]}, config.month_format)
        assert advice != generic, f"{rule} has no advice of its own"
        if rule == EARLIER_MONTH_RULE:  # the row's own month, not the file's
            assert OWN_MONTH in advice and FILES_MONTH not in advice, advice
        else:
            assert FILES_MONTH in advice and OWN_MONTH not in advice, (rule, advice)
        if rule in LATER_MONTH_RULES:
            assert "that month's" in advice, (rule, advice)
    assert config.month_format in rule_advice("month_parses", [FILE], None, config.month_format)
    assert "known_values" in rule_advice(next(r for r in rules if r.startswith("known_")), [FILE])


def test_files_whose_rows_were_all_corrected_get_no_advice() -> None:
    files = [
        {"source_file": FILE, "rows": 2, "corrected": 2, "rules": "turnover_is_number"},
        {"source_file": "x.csv", "rows": 2, "corrected": 1, "rules": "row_parses"},
    ]
    lines = advice_lines(files)
    assert [line.split("`")[1] for line in lines] == ["row_parses"]
    # A file not named by month: the placeholder, never a made-up month.
    assert "`<file_prefix>_<YYYY-MM>_correction.csv`" in lines[0]
    assert correction_file("x.csv", "2016-01") == "<file_prefix>_2016-01_correction.csv"
    assert advice_lines([]) == []
