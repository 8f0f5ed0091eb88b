"""Silver (latest load wins, gaps explicit) and gold features (values, no look-ahead)."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.features import add_features, feature_columns
from demand_forecasting.data.silver import build_silver, silver_columns

VALIDATED = (
    "series_id string, state string, industry string, segment string, month date, y double, "
    "batch_id long, source_file string, load_time timestamp"
)
SEGMENT = "tasmania__food_retailing"


def _validated(spark: SparkSession, rows: list[tuple[str, date, float, int]]) -> DataFrame:
    """(series_id, month, y, batch) -> validated rows; a later batch loads later."""
    return spark.createDataFrame(
        [
            (
                s,
                "Tasmania",
                "Liquor retailing",
                SEGMENT,
                m,
                y,
                b,
                f"f{b}.csv",
                datetime(2026, 1, 1, b),
            )
            for s, m, y, b in rows
        ],
        VALIDATED,
    )


def _month(i: int) -> date:
    """Month i after 2014-01."""
    return date(2014 + i // 12, i % 12 + 1, 1)


def test_latest_load_wins_and_gaps_are_explicit(spark: SparkSession, aus: DatasetConfig) -> None:
    validated = _validated(
        spark,
        [
            ("A", _month(0), 1.0, 0),
            ("A", _month(1), 2.0, 0),
            ("A", _month(1), 2.5, 1),  # re-sent later: wins
            ("A", _month(4), 5.0, 1),  # months 2 and 3 missing
            ("B", _month(3), 7.0, 0),
        ],
    )
    silver = build_silver(validated, aus)

    assert silver.columns == silver_columns(aus)
    assert silver.columns[:8] == [
        "series_id",
        "state",
        "industry",
        "segment",
        "month",
        "y",
        "is_gap",
        "batch_id",
    ]
    rows = [
        (r["series_id"], r["month"], r["y"], r["is_gap"], r["batch_id"])
        for r in silver.orderBy("series_id", "month").collect()
    ]
    assert rows == [
        ("A", _month(0), 1.0, False, 0),
        ("A", _month(1), 2.5, False, 1),
        ("A", _month(2), None, True, None),
        ("A", _month(3), None, True, None),
        ("A", _month(4), 5.0, False, 1),
        ("B", _month(3), 7.0, False, 0),  # nothing invented before or after a series' span
    ]
    gap = silver.where("is_gap").first()
    assert gap is not None and (gap["state"], gap["segment"]) == ("Tasmania", SEGMENT)


def test_within_a_batch_the_correction_file_wins(spark: SparkSession, aus: DatasetConfig) -> None:
    loaded = datetime(2026, 1, 3, 6)
    rows = [
        ("A", _month(0), y, 7, f"file:/landing/aus_retail_2014-01{suffix}.csv", loaded)
        for y, suffix in ((1.0, ""), (1.5, "_correction"))
    ]
    validated = spark.createDataFrame(
        [(s, "Tasmania", "Liquor retailing", SEGMENT, *rest) for s, *rest in rows], VALIDATED
    )
    silver = build_silver(validated, aus).collect()
    assert [(r["y"], r["source_file"].rsplit("/", 1)[-1]) for r in silver] == [
        (1.5, "aus_retail_2014-01_correction.csv")
    ]


@pytest.fixture(scope="module")
def gold(spark: SparkSession, aus: DatasetConfig) -> list[dict[str, object]]:
    values = {i: float(i + 1) for i in range(16) if i != 5}  # month 5 is a gap
    validated = _validated(spark, [("A", _month(i), y, 0) for i, y in values.items()])
    features = add_features(build_silver(validated, aus))
    return [r.asDict() for r in features.orderBy("month").collect()]


def test_gold_has_silver_columns_then_double_features(
    spark: SparkSession, aus: DatasetConfig
) -> None:
    silver = build_silver(_validated(spark, [("A", _month(0), 1.0, 0)]), aus)
    gold = add_features(silver)
    assert gold.columns == [*silver_columns(aus), *feature_columns()]
    assert feature_columns() == [
        "lag_1",
        "lag_2",
        "lag_3",
        "lag_6",
        "lag_12",
        "roll_mean_3",
        "roll_mean_6",
        "roll_mean_12",
        "roll_std_3",
        "roll_std_6",
        "roll_std_12",
        "yoy_growth",
        "month_of_year",
        "quarter",
        "year",
    ]
    types = dict(gold.dtypes)
    assert {types[c] for c in feature_columns()} == {"double"}


def test_lags_use_the_months_before(gold: list[dict[str, object]]) -> None:
    last = gold[15]  # month 15, y = 16
    assert (last["lag_1"], last["lag_2"], last["lag_3"], last["lag_12"]) == (15.0, 14.0, 13.0, 4.0)
    assert gold[11]["lag_6"] is None  # y of month 5 is a gap
    assert gold[6]["lag_1"] is None and gold[6]["is_gap"] is False
    assert gold[11]["lag_12"] is None  # no month -1
    assert gold[0]["lag_1"] is None


def test_rolling_statistics_include_the_row_own_month(gold: list[dict[str, object]]) -> None:
    row = gold[15]
    assert row["roll_mean_3"] == pytest.approx((14 + 15 + 16) / 3)
    assert row["roll_std_3"] == pytest.approx(1.0)
    # The 6-month window 10..15 has no gap; the 12-month window 4..15 skips the gap (month 5).
    assert row["roll_mean_6"] == pytest.approx(sum(range(11, 17)) / 6)
    window = [y for y in range(5, 17) if y != 6]
    assert row["roll_mean_12"] == pytest.approx(sum(window) / len(window))
    mean = sum(window) / len(window)
    std = math.sqrt(sum((y - mean) ** 2 for y in window) / (len(window) - 1))
    assert row["roll_std_12"] == pytest.approx(std)
    # Null until the series has a full window of history.
    assert gold[1]["roll_mean_3"] is None and gold[2]["roll_mean_3"] == pytest.approx(2.0)
    assert gold[10]["roll_mean_12"] is None and gold[11]["roll_mean_12"] is not None


def test_year_on_year_growth_and_calendar(gold: list[dict[str, object]]) -> None:
    row = gold[15]  # 2015-04, y = 16, lag_12 = 4
    assert row["yoy_growth"] == pytest.approx(16 / 4 - 1)
    assert (row["month_of_year"], row["quarter"], row["year"]) == (4.0, 2.0, 2015.0)
    assert gold[5]["yoy_growth"] is None  # a gap has no growth


def test_features_never_look_ahead(spark: SparkSession, aus: DatasetConfig) -> None:
    rows = [("A", _month(i), float(i + 1), 0) for i in range(15)]
    base = add_features(build_silver(_validated(spark, rows), aus))
    changed_rows = [*rows[:-1], ("A", _month(14), 1000.0, 0)]
    changed = add_features(build_silver(_validated(spark, changed_rows), aus))
    earlier = F.col("month") < F.lit(_month(14))
    assert base.where(earlier).exceptAll(changed.where(earlier)).count() == 0
    assert base.exceptAll(changed).count() == 1  # only the changed month itself differs


def test_zero_last_year_gives_null_growth(spark: SparkSession, aus: DatasetConfig) -> None:
    rows = [("A", _month(i), 0.0 if i == 0 else 1.0, 0) for i in range(13)]
    gold = add_features(build_silver(_validated(spark, rows), aus))
    assert gold.where(F.col("month") == _month(12)).first()["yoy_growth"] is None
