"""Planned covariates end to end: a synthetic segment trained with price and promotion on
Spark, logged and registered in MLflow, validated and deployed, then scored from a
``silver_plans`` table that misses one plan."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from demand_forecasting import names
from demand_forecasting.data.config import load_dataset_config
from demand_forecasting.data.synthetic import month_frame, series_parameters, synthetic_months
from demand_forecasting.models import deploy, train, validate
from demand_forecasting.models.covariates import MissingPlanError
from demand_forecasting.models.fallback import is_fallback
from demand_forecasting.models.registry import CHAMPION, SegmentRegistry
from demand_forecasting.platform.context import build_context
from demand_forecasting.scoring import score

pytestmark = pytest.mark.slow

COMMON = ["--catalog", "main", "--schema", "demand_forecasting", "--target", "dev"]
SERIES, SEED = 96, 11  # 3 series per segment
SEGMENT = "north__beverages"
FIRST, LAST = date(2005, 1, 1), date(2015, 12, 1)
HORIZON = 6
PLAN_MONTHS = pd.date_range("2016-01-01", periods=HORIZON, freq="MS")


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Generator rows (landing format) as gold and plan rows of ``SEGMENT``."""
    config = load_dataset_config("synthetic")
    out = pd.DataFrame(
        {
            "segment": [
                config.segment_of({"region": r, "category": c})
                for r, c in zip(frame["Region"], frame["Category"], strict=True)
            ],
            "series_id": frame["Region"] + "|" + frame["Product"],
            "month": pd.to_datetime(frame["Period"]).dt.date,
            "y": frame["Units"].astype(float),
            "price": frame["Price"].astype(float),
            "promo": frame["Promo"].astype(float),
        }
    )
    return out[out["segment"] == SEGMENT]


def test_a_segment_trained_with_plans_is_scored_from_silver_plans(
    spark: Any, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = build_context("dev", "main", "demand_forecasting", state_dir=state_dir)
    config = load_dataset_config("synthetic")
    months = synthetic_months(config, SERIES, SEED, FIRST, LAST)
    gold = pd.concat([canonical(frame) for _, frame in months], ignore_index=True)
    ctx.tables.write(
        ctx.spark.createDataFrame(
            gold,
            "segment string, series_id string, month date, y double, price double, promo double",
        ),
        ctx.table(names.FEATURES),
        mode="overwrite",
    )
    # The plans: what the generator then did (a plan kept), one series' third month missing.
    params = series_parameters(SERIES, SEED)
    future = pd.concat(
        [canonical(month_frame(config, params, SEED, FIRST, m.date())) for m in PLAN_MONTHS]
    )
    series = sorted(gold["series_id"].unique())
    hole = (future["series_id"] == series[1]) & (future["month"] == PLAN_MONTHS[2].date())
    plans = future[~hole].assign(
        plan_month=LAST,
        source_file="synthetic_plans_2015-12.csv",
        load_time=datetime(2016, 1, 2, 6),
    )
    ctx.tables.write(
        ctx.spark.createDataFrame(
            plans[
                ["series_id", "month", "price", "promo", "plan_month", "source_file", "load_time"]
            ],
            "series_id string, month date, price double, promo double, plan_month date, "
            "source_file string, load_time timestamp",
        ),
        ctx.table(names.PLANS),
        mode="overwrite",
    )

    train.main(
        [
            *COMMON,
            "--segments",
            SEGMENT,
            "--dataset",
            "synthetic",
            "--horizon",
            str(HORIZON),
            "--experiment",
            "/Shared/covariates",
            "--recipe",
            '{"xgb_params": {"n_estimators": 40, "learning_rate": 0.2}}',
        ]
    )
    validate.main([*COMMON, "--segments", SEGMENT, "--backtest-origins", "2"])
    deploy.main([*COMMON, "--segments", SEGMENT, "--require-approval", "false"])

    registry = SegmentRegistry(ctx.mlflow, "main", "demand_forecasting", "demand")
    champion = registry.segments_with([SEGMENT], CHAMPION)[SEGMENT]
    assert not is_fallback(champion), "the covariate model lost to seasonal naive"
    assert "plan_price,plan_price_rel,plan_promo,plan_promo_rel" in champion.tags["features"]
    model = mlflow.pyfunc.load_model(f"models:/{registry.name(SEGMENT)}@{CHAMPION}")
    assert "is_plan" in model.metadata.get_input_schema().input_names()
    recent = gold[gold["month"] > date(2013, 1, 1)].assign(
        month=lambda f: pd.to_datetime(f["month"])
    )
    with pytest.raises(MissingPlanError, match="is_plan"):
        model.predict(recent[["series_id", "month", "y", "price", "promo"]].assign(is_plan=False))

    with caplog.at_level(logging.INFO):
        score.main([*COMMON, "--dataset", "synthetic"])

    rows = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()
    assert len(rows) == len(series) * HORIZON  # nothing lost for the missing plan
    assert rows["forecast"].notna().all()
    marked = rows[rows["plan_missing"]]
    assert list(zip(marked["series_id"], marked["month"], strict=True)) == [
        (series[1], PLAN_MONTHS[2].date())
    ]
    assert "1 forecast row(s) of 1 series in 1 segment(s) had no plan of price, promo" in (
        caplog.text
    )
