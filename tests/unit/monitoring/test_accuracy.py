"""Accuracy metrics: WAPE and bias per segment, month and horizon; the alert rule."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from demand_forecasting.monitoring.accuracy import (
    accuracy_alerts,
    accuracy_by_segment,
    forecast_errors,
    recent_accuracy,
)

FORECAST_SCHEMA = (
    "segment string, series_id string, month date, horizon int, "
    "run_month date, forecast double, model_version string"
)
JAN, FEB, MAR = date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)


def test_wape_and_bias_are_volume_weighted_per_segment_month_and_horizon(
    spark: SparkSession,
) -> None:
    forecasts = spark.createDataFrame(
        [
            ("a", "a1", FEB, 1, JAN, 110.0, "3"),
            ("a", "a2", FEB, 1, JAN, 5.0, "3"),
            ("a", "a1", MAR, 2, JAN, 100.0, "3"),  # March has no actual yet: not scored
            ("b", "b1", FEB, 1, JAN, 50.0, "1"),
            ("b", "b2", FEB, 1, JAN, 70.0, "1"),  # b2's February is a gap: not scored
        ],
        FORECAST_SCHEMA,
    )
    actuals = spark.createDataFrame(
        [
            ("a1", FEB, 100.0),
            ("a2", FEB, 10.0),
            ("b1", FEB, 40.0),
            ("b2", FEB, None),
        ],
        "series_id string, month date, y double",
    )

    rows = accuracy_by_segment(forecast_errors(forecasts, actuals)).toPandas()

    assert len(rows) == 2
    a = rows[rows["segment"] == "a"].iloc[0]
    # |110-100| + |5-10| = 15 over 110; (10 - 5) / 110 over-forecast
    assert a["wape"] == pytest.approx(15 / 110) and a["bias"] == pytest.approx(5 / 110)
    assert (a["n_series"], a["horizon"], a["model_versions"]) == (2, 1, "3")
    b = rows[rows["segment"] == "b"].iloc[0]
    assert b["wape"] == pytest.approx(0.25) and b["bias"] == pytest.approx(0.25)
    assert b["n_series"] == 1


def _accuracy(rows: list[tuple[str, date, int, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["segment", "month", "horizon", "actual_sum", "abs_error_sum", "error_sum"]
    )
    return frame.assign(interval_rows=0, interval_hits=0)


def test_interval_coverage_is_the_share_of_actuals_inside_their_interval(
    spark: SparkSession,
) -> None:
    schema = FORECAST_SCHEMA.replace(
        "forecast double,", "forecast double, forecast_lower double, forecast_upper double,"
    )
    nan = float("nan")
    forecasts = spark.createDataFrame(
        [
            ("a", "a1", FEB, 1, JAN, 110.0, 95.0, 120.0, "3"),  # 100 inside
            ("a", "a2", FEB, 1, JAN, 5.0, 4.0, 6.0, "3"),  # 10 above
            ("a", "a3", FEB, 1, JAN, 20.0, 18.0, 20.0, "3"),  # 20 on the bound: inside
            ("b", "b1", FEB, 1, JAN, 50.0, None, None, "1"),  # no interval (older model)
            ("b", "b2", FEB, 1, JAN, 50.0, nan, nan, "1"),  # nor here
        ],
        schema,
    )
    actuals = spark.createDataFrame(
        [
            ("a1", FEB, 100.0),
            ("a2", FEB, 10.0),
            ("a3", FEB, 20.0),
            ("b1", FEB, 40.0),
            ("b2", FEB, 45.0),
        ],
        "series_id string, month date, y double",
    )

    rows = accuracy_by_segment(forecast_errors(forecasts, actuals)).toPandas()

    a = rows[rows["segment"] == "a"].iloc[0]
    assert (a["interval_rows"], a["interval_hits"]) == (3, 2)
    assert a["interval_coverage"] == pytest.approx(2 / 3)
    b = rows[rows["segment"] == "b"].iloc[0]
    assert (b["interval_rows"], b["interval_hits"]) == (0, 0)
    assert pd.isna(b["interval_coverage"])
    # Forecasts without bound columns at all (a table from before intervals): no coverage.
    old = accuracy_by_segment(forecast_errors(forecasts.drop("forecast_lower"), actuals))
    assert old.toPandas()["interval_rows"].eq(0).all()


def test_recent_coverage_pools_every_horizon_of_the_newest_months() -> None:
    accuracy = _accuracy(
        [
            ("a", JAN, 1, 100.0, 50.0, 50.0),
            ("a", FEB, 1, 100.0, 10.0, -10.0),
            ("a", FEB, 3, 100.0, 10.0, -10.0),
        ]
    )
    accuracy.loc[:, "interval_rows"] = [10, 4, 6]
    accuracy.loc[:, "interval_hits"] = [0, 4, 3]

    recent = recent_accuracy(accuracy, horizon=1, window_months=1).iloc[0]

    assert recent["interval_coverage"] == pytest.approx(7 / 10)


def test_recent_accuracy_pools_the_newest_months_of_one_horizon() -> None:
    accuracy = _accuracy(
        [
            ("a", JAN, 1, 100.0, 50.0, 50.0),  # outside a 2-month window
            ("a", FEB, 1, 100.0, 10.0, -10.0),
            ("a", MAR, 1, 300.0, 30.0, 30.0),
            ("a", MAR, 2, 300.0, 300.0, 300.0),  # another horizon
        ]
    )
    recent = recent_accuracy(accuracy, horizon=1, window_months=2).iloc[0]
    assert recent["wape"] == pytest.approx(40 / 400)
    assert recent["bias"] == pytest.approx(20 / 400)
    assert (recent["first_month"], recent["last_month"], recent["months"]) == (FEB, MAR, 2)


def test_alerts_name_segments_over_the_threshold_worst_first() -> None:
    accuracy = _accuracy(
        [
            ("calm", MAR, 1, 100.0, 5.0, 5.0),
            ("bad", MAR, 1, 100.0, 20.0, -20.0),
            ("worse", MAR, 1, 100.0, 40.0, 40.0),
            ("empty", MAR, 1, 0.0, 3.0, 3.0),  # no actual volume: WAPE undefined, no alert
        ]
    )
    alerts = accuracy_alerts(accuracy, threshold=0.15)
    assert [a.segment for a in alerts] == ["worse", "bad"]
    assert alerts[1].describe() == "bad: WAPE 20.0% (bias -20.0%) over 2016-03..2016-03 > 15.0%"


def test_no_evaluated_month_means_no_alert() -> None:
    assert accuracy_alerts(_accuracy([]), threshold=0.1) == []


def test_alert_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="accuracy_alert_wape"):
        accuracy_alerts(_accuracy([]), threshold=0)
