"""Tiny gold feature tables and registered champions for monitoring tests."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession

GOLD_SCHEMA = (
    "series_id string, segment string, month date, y double, lag_1 double, roll_mean_3 double"
)


def months(first: date, count: int) -> list[date]:
    """``count`` consecutive first-of-months from ``first``."""
    index = first.year * 12 + first.month - 1
    return [date((index + i) // 12, (index + i) % 12 + 1, 1) for i in range(count)]


def gold_frame(segments: dict[str, int], first: date, count: int, seed: int = 0) -> pd.DataFrame:
    """Seasonal series (``{segment: series count}``) with the features drift reads."""
    rng = np.random.default_rng(seed)
    rows = []
    for segment, n_series in segments.items():
        for s in range(n_series):
            level = 100.0 * (s + 1)
            ys = [
                level * (1 + 0.2 * np.sin(2 * np.pi * i / 12)) * rng.normal(1, 0.01)
                for i in range(count)
            ]
            for i, month in enumerate(months(first, count)):
                rows.append(
                    {
                        "series_id": f"{segment}_{s}",
                        "segment": segment,
                        "month": month,
                        "y": ys[i],
                        "lag_1": ys[i - 1] if i >= 1 else None,
                        "roll_mean_3": float(np.mean(ys[i - 2 : i + 1])) if i >= 2 else None,
                    }
                )
    return pd.DataFrame(rows)


def to_spark(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """The pandas gold frame as a Spark DataFrame with gold's types."""
    records = [
        tuple(None if pd.isna(v) else v for v in row)
        for row in frame[[c.split()[0] for c in GOLD_SCHEMA.split(", ")]].itertuples(index=False)
    ]
    return spark.createDataFrame(records, GOLD_SCHEMA)


def register_champion(
    client: MlflowClient, name: str, training_version: int, training_table: str, source: str
) -> str:
    """Register a model version tagged with its training data and make it the champion."""
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        source=source,
        tags={"training_table": training_table, "training_table_version": str(training_version)},
    )
    client.set_registered_model_alias(name, "champion", version.version)
    return str(version.version)
