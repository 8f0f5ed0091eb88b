"""Helpers for the models tests (unit and integration): real aus_retail history shaped like
the gold feature table. Importable from any test: pytest puts ``tests/`` (the folder of the
root conftest) on the import path."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

from demand_forecasting import names
from demand_forecasting.data.config import load_dataset_config

GOLD_SCHEMA = (
    "series_id string, state string, industry string, segment string, month date, "
    "y double, is_gap boolean"
)


@lru_cache(maxsize=1)
def aus_retail() -> pd.DataFrame:
    """The bundled real dataset as ``series_id, state, industry, segment, month, y``."""
    config = load_dataset_config("aus_retail")
    path = resources.files("tsdata").joinpath("fpppy/aus_retail.csv")
    with resources.as_file(path) as csv:
        raw = pd.read_csv(csv, parse_dates=["Month"])
    frame = raw.rename(
        columns={
            "Series ID": "series_id",
            "Month": "month",
            "Turnover": "y",
            "State": "state",
            "Industry": "industry",
        }
    )
    frame["segment"] = [
        config.segment_of({"state": s, "industry": i})
        for s, i in zip(frame["state"], frame["industry"], strict=True)
    ]
    return frame[["series_id", "state", "industry", "segment", "month", "y"]]


def history(segments: list[str], until: str, since: str = "2005-01-01") -> pd.DataFrame:
    """Real history of ``segments`` between two months, gold-shaped (``is_gap`` false)."""
    frame = aus_retail()
    frame = frame[
        frame["segment"].isin(segments) & (frame["month"] <= until) & (frame["month"] >= since)
    ].copy()
    frame["month"] = frame["month"].dt.date
    frame["is_gap"] = False
    return frame.reset_index(drop=True)


def write_gold(ctx, frame: pd.DataFrame) -> int:  # type: ignore[no-untyped-def]
    """Overwrite the gold feature table with ``frame``; return its new Delta version."""
    table = ctx.table(names.FEATURES)
    spark_frame = ctx.spark.createDataFrame(
        frame[[c.split(" ")[0] for c in GOLD_SCHEMA.split(", ")]], GOLD_SCHEMA
    )
    ctx.tables.write(spark_frame, table, mode="overwrite", overwriteSchema="true")
    version = ctx.tables.version(table)
    assert version is not None
    return version
