"""Plan files -> silver_plans and quarantine_plans, on real Spark and Delta."""

from __future__ import annotations

import logging
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import Row

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig, load_dataset_config
from demand_forecasting.data.plan_layout import plans_folder
from demand_forecasting.data.plans import load_plans, plans_columns

HEADER = "Region,Product,Period,Price,Promo"
GOOD = [
    "North,P000000,2016-01,9.5,0",
    "North,P000000,2016-02,9.75,1",
    "South,P000001,2016-01,7.8,1",
]
#: One bad row per rule (two for unique_series_month: every copy fails), and the rule.
BAD = [
    ("North,P000000,2016-03,9.5,0,extra", "row_parses"),
    ("North,,2016-03,9.5,0", "not_null_product"),
    ("North,P000000,,9.5,0", "not_null_period"),
    ("North,P000000,2016-04,,0", "not_null_price"),
    ("North,P000000,2016-05,n/a,0", "price_is_number"),
    ("North,P000000,2016-06,9.5,yes", "promo_is_number"),
    ("North,P000000,2016-13,9.5,0", "month_parses"),
    ("North,P000000,2015-12,9.5,0", "month_after_plan_month"),
    ("North,P000000,2017-01,9.5,0", "month_within_horizon"),
    ("East,P999999,2016-01,5.0,0", "known_series"),
    ("South,P000001,2016-02,7.5,0", "unique_series_month"),
    ("South,P000001,2016-02,7.6,0", "unique_series_month"),
]


@pytest.fixture
def synthetic() -> DatasetConfig:
    return load_dataset_config("synthetic")


def _silver(ctx: Any, series: list[str]) -> None:
    """A silver table holding ``series`` (what the rule known_series reads)."""
    rows = [Row(series_id=s, month=date(2015, 12, 1), y=1.0) for s in series]
    ctx.tables.write(ctx.spark.createDataFrame(rows), ctx.table(names.SILVER), mode="overwrite")


def _plan(
    ctx: Any, config: DatasetConfig, name: str, lines: list[str], header: str = HEADER
) -> Path:
    folder = plans_folder(Path(ctx.volume_path(names.LANDING_VOLUME, config.name)))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _table(ctx: Any, name: str) -> list[Row]:
    return ctx.tables.read(ctx.table(name)).collect()


def _versions(ctx: Any) -> dict[str, int | None]:
    tables = (names.PLANS, names.PLANS_QUARANTINE, names.PLAN_FILES)
    return {t: ctx.tables.version(ctx.table(t)) for t in tables}


def test_good_rows_reach_silver_plans_and_bad_rows_wait_in_quarantine_with_their_rule(
    ctx: Any, synthetic: DatasetConfig
) -> None:
    _silver(ctx, ["North|P000000", "South|P000001"])
    _plan(ctx, synthetic, "synthetic_plan_2015-12.csv", GOOD + [line for line, _ in BAD])

    done = load_plans(ctx, synthetic, horizon=12)

    assert (done.files, done.accepted, done.quarantined, done.refused) == (1, 3, len(BAD), 0)
    plans = ctx.tables.read(ctx.table(names.PLANS))
    assert plans.columns == plans_columns(synthetic)
    assert dict(plans.dtypes) == {
        "series_id": "string",
        "month": "date",
        "price": "double",
        "promo": "double",
        "plan_month": "date",
        "source_file": "string",
        "load_time": "timestamp",
    }
    assert sorted(
        (r.series_id, r.month, r.price, r.promo, r.plan_month) for r in plans.collect()
    ) == [
        ("North|P000000", date(2016, 1, 1), 9.5, 0.0, date(2015, 12, 1)),
        ("North|P000000", date(2016, 2, 1), 9.75, 1.0, date(2015, 12, 1)),
        ("South|P000001", date(2016, 1, 1), 7.8, 1.0, date(2015, 12, 1)),
    ]
    assert all(
        r.source_file.endswith("/plans/synthetic/synthetic_plan_2015-12.csv")
        for r in plans.collect()
    )
    quarantined = _table(ctx, names.PLANS_QUARANTINE)
    # Nothing lost: every row is in one of the two tables, bad ones as they landed.
    assert len(quarantined) + plans.count() == len(GOOD) + len(BAD)
    as_landed = {
        ",".join(v or "" for v in (r.region, r.product, r.period, r.price, r.promo)): r
        for r in quarantined
        if r["_rescued_data"] is None
    }
    for line, rule in BAD:
        if rule == "row_parses":
            row = next(r for r in quarantined if r["_rescued_data"] is not None)
            assert row["_rescued_data"] == line and row.failed_rule == rule
        else:
            assert as_landed[line].failed_rule == rule, line
    assert {r.plan_month for r in quarantined} == {date(2015, 12, 1)}
    files = _table(ctx, names.PLAN_FILES)
    assert [(f.file_name, f.rows, f.accepted, f.quarantined, f.problem) for f in files] == [
        ("synthetic_plan_2015-12.csv", len(GOOD) + len(BAD), 3, len(BAD), None)
    ]


def test_a_rerun_adds_nothing_and_a_run_that_died_before_recording_the_files_adds_no_duplicates(
    ctx: Any, synthetic: DatasetConfig
) -> None:
    _silver(ctx, ["North|P000000", "South|P000001"])
    _plan(ctx, synthetic, "synthetic_plan_2015-12.csv", [*GOOD, BAD[1][0]])
    load_plans(ctx, synthetic, horizon=12)
    before = _versions(ctx)

    assert load_plans(ctx, synthetic, horizon=12).files == 0
    assert _versions(ctx) == before  # nothing new: no table changed

    # A run that wrote both tables and died before plan_files: its rerun judges the file
    # again, inserts none of its rows twice, and records it.
    folder = ctx.tables.local_folder(ctx.table(names.PLAN_FILES))
    shutil.rmtree(folder)
    again = load_plans(ctx, synthetic, horizon=12)
    assert again.files == 1
    assert len(_table(ctx, names.PLANS)) == len(GOOD)
    assert len(_table(ctx, names.PLANS_QUARANTINE)) == 1
    assert len(_table(ctx, names.PLAN_FILES)) == 1


def test_a_plan_file_rewritten_after_loading_is_loaded_again_and_its_rows_win(
    ctx: Any, synthetic: DatasetConfig
) -> None:
    _silver(ctx, ["North|P000000", "South|P000001"])
    path = _plan(ctx, synthetic, "synthetic_plan_2015-12.csv", GOOD)
    load_plans(ctx, synthetic, horizon=12)
    time.sleep(0.01)
    path.write_text(f"{HEADER}\nNorth,P000000,2016-01,8.99,1\n", encoding="utf-8")

    assert load_plans(ctx, synthetic, horizon=12).accepted == 1
    plans = ctx.tables.read(ctx.table(names.PLANS))
    assert plans.count() == len(GOOD) + 1
    newest = (
        plans.where("series_id = 'North|P000000' AND month = '2016-01-01'")
        .orderBy("plan_month", "load_time", ascending=False)
        .first()
    )
    assert newest is not None and (newest.price, newest.promo) == (8.99, 1.0)
    assert load_plans(ctx, synthetic, horizon=12).files == 0


def test_files_that_break_a_file_rule_are_refused_by_name_and_recorded(
    ctx: Any, synthetic: DatasetConfig, caplog: pytest.LogCaptureFixture
) -> None:
    _silver(ctx, ["North|P000000"])
    _plan(
        ctx, synthetic, "synthetic_plan_2015-11.csv", GOOD[:1], header="Region,Product,Month,Price"
    )
    cut = _plan(ctx, synthetic, "synthetic_plan_2015-12.csv", GOOD[:1])
    cut.write_text(f"{HEADER}\nNorth,P000000,2016-01,9.5", encoding="utf-8")
    _plan(ctx, synthetic, "prices_december.csv", GOOD[:1])

    with caplog.at_level(logging.INFO, logger="demand_forecasting.data.plans"):
        done = load_plans(ctx, synthetic, horizon=12)

    assert (done.files, done.refused) == (0, 2)
    assert not ctx.tables.exists(ctx.table(names.PLANS))
    problems = {f.file_name: f.problem for f in _table(ctx, names.PLAN_FILES)}
    assert "rule: header_matches" in problems["synthetic_plan_2015-11.csv"]
    assert "rule: file_ends_with_line_break" in problems["synthetic_plan_2015-12.csv"]
    assert "prices_december.csv is not named as a plan file" in caplog.text
    assert "synthetic_plan_2015-11.csv has header" in caplog.text
    assert load_plans(ctx, synthetic, horizon=12).refused == 0  # judged once per version


def test_plan_files_wait_for_silver_and_a_missing_plan_is_logged(
    ctx: Any, synthetic: DatasetConfig, caplog: pytest.LogCaptureFixture
) -> None:
    _plan(ctx, synthetic, "synthetic_plan_2015-11.csv", GOOD)
    assert load_plans(ctx, synthetic, horizon=12).files == 0
    assert not ctx.tables.exists(ctx.table(names.PLAN_FILES))

    _silver(ctx, ["North|P000000", "South|P000001"])
    with caplog.at_level(logging.INFO, logger="demand_forecasting.data.plans"):
        assert load_plans(ctx, synthetic, horizon=12).accepted == len(GOOD)
    assert "no plan file of 2015-12 (synthetic_plan_2015-12.csv)" in caplog.text


def test_a_dataset_without_planned_columns_creates_no_plan_table(ctx: Any) -> None:
    config = load_dataset_config("aus_retail_small")
    _silver(ctx, ["A3349335T"])
    _plan(ctx, config, "aus_retail_small_plan_2015-12.csv", ["x"], header="Series ID")
    assert load_plans(ctx, config, horizon=12).files == 0
    for table in (names.PLANS, names.PLANS_QUARANTINE, names.PLAN_FILES):
        assert not ctx.tables.exists(ctx.table(table))
