"""The plans reader: the newest plan of each series and month wins."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from demand_forecasting import names
from demand_forecasting.data.config import load_dataset_config
from demand_forecasting.data.plans import PlansTableError, read_planned_covariates
from demand_forecasting.platform.context import RunContext

PLANS_SCHEMA = (
    "series_id string, month date, price double, promo double, plan_month date, "
    "source_file string, load_time timestamp"
)


def write_plans(
    ctx: RunContext, rows: list[tuple[object, ...]], schema: str = PLANS_SCHEMA
) -> None:
    """Write ``rows`` as the plans table (the schema plans14's landing writes)."""
    frame = ctx.spark.createDataFrame(rows, schema)
    ctx.tables.write(frame, ctx.table(names.PLANS), mode="overwrite", overwriteSchema="true")


def test_the_newest_plan_month_then_the_newest_load_wins(ctx: RunContext) -> None:
    jan, feb = date(2016, 1, 1), date(2016, 2, 1)
    early, late = datetime(2016, 1, 3, 8), datetime(2016, 1, 9, 8)
    write_plans(
        ctx,
        [
            # a: planned in November, restated in December: December's plan counts
            ("a", jan, 2.0, 0.0, date(2015, 12, 1), "plans_2015-12.csv", early),
            ("a", jan, 1.5, 1.0, date(2015, 11, 1), "plans_2015-11.csv", late),
            # b: December's file landed twice: the later load counts
            ("b", jan, 3.0, 0.0, date(2015, 12, 1), "plans_2015-12.csv", early),
            ("b", jan, 2.4, 1.0, date(2015, 12, 1), "plans_2015-12.csv", late),
            ("b", feb, 3.0, 0.0, date(2015, 12, 1), "plans_2015-12.csv", late),
            # a month not asked for
            ("a", date(2016, 3, 1), 9.0, 1.0, date(2015, 12, 1), "plans_2015-12.csv", late),
        ],
    )
    plans = read_planned_covariates(ctx, load_dataset_config("synthetic"), [jan, feb])
    expected = pd.DataFrame(
        {
            "series_id": ["a", "b", "b"],
            "month": pd.to_datetime([jan, jan, feb]),
            "price": [2.0, 2.4, 3.0],
            "promo": [0.0, 1.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(plans, expected)


def test_a_plans_table_without_a_planned_column_is_named(ctx: RunContext) -> None:
    write_plans(
        ctx,
        [("a", date(2016, 1, 1), 2.0, date(2015, 12, 1), "p.csv", datetime(2016, 1, 3))],
        "series_id string, month date, price double, plan_month date, source_file string, "
        "load_time timestamp",
    )
    with pytest.raises(PlansTableError, match=r"lacks column\(s\) \['promo'\].*'synthetic'"):
        read_planned_covariates(ctx, load_dataset_config("synthetic"), [date(2016, 1, 1)])


def test_no_plans_table_is_named_with_what_to_land(ctx: RunContext) -> None:
    with pytest.raises(FileNotFoundError, match=r"silver_plans does not exist.*price, promo"):
        read_planned_covariates(ctx, load_dataset_config("synthetic"), [date(2016, 1, 1)])
