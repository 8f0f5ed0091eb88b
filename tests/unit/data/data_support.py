"""Helpers for the data-pipeline tests: tiny inline landing files and bronze rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.ingest import bronze_columns
from demand_forecasting.data.rules import LINE_TERMINATED

AUS_HEADER = '"State","Industry","Series ID","Month","Turnover"'


def write_landing_file(
    folder: Path, name: str, lines: Sequence[str], header: str = AUS_HEADER
) -> Path:
    """Write a landing CSV (header + ``lines``) the way landing does: all at once."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def bronze_frame(
    spark: SparkSession,
    config: DatasetConfig,
    rows: Sequence[dict[str, str | None]],
    source_file: str = "file:/landing/aus_retail_2015-01.csv",
    batch_id: int = 0,
) -> DataFrame:
    """Bronze rows (text columns, lineage) from dicts of canonical column -> text.

    ``line_terminated`` is true unless a row says ``"false"`` (the last line of a file cut
    short) or None (a row ingested before the column existed).
    """
    loaded = datetime(2026, 1, 3, 6, 0)
    data = [
        (
            *[row.get(c) for c in config.canonical_columns],
            row.get("_rescued_data"),
            row.get("source_file", source_file),
            loaded,
            loaded,
            batch_id,
            _line_terminated(row),
        )
        for row in rows
    ]
    text = ", ".join(f"`{c}` string" for c in [*config.canonical_columns, "_rescued_data"])
    schema = (
        f"{text}, source_file string, file_modification_time timestamp, load_time timestamp, "
        f"batch_id long, {LINE_TERMINATED} boolean"
    )
    frame = spark.createDataFrame(data, schema)
    assert frame.columns == bronze_columns(config)
    return frame


def _line_terminated(row: dict[str, str | None]) -> bool | None:
    if LINE_TERMINATED not in row:
        return True
    value = row[LINE_TERMINATED]
    return None if value is None else value == "true"
