"""How the drift rule behaves on the bundled data: false alarms by champion age, detection.

For every segment of aus_retail (46) and a sample of months in 2013-2018, check_drift's rule
(:func:`demand_forecasting.monitoring.drift.segment_psi`, the job's defaults: 12-month
windows, 10 bins, PSI > 0.2 and above the 1% sampling-noise level) is applied to:

(a) real data, with the champion trained ``age`` months before the run month: the share of
    segments that would retrain although nothing was planted;
(b) one segment's target multiplied by a factor over its newest ``k`` months (the reference
    left as the champion saw it): the share of months in which it is detected.

Features are computed in pandas with the gold table's definitions
(:mod:`demand_forecasting.data.features`: lags, rolling mean/std over the k months ending at
the row's month, year-on-year growth), so no Spark is needed. Writes
benchmarks/results/drift_rule.json.

Usage:
    .venv/bin/python benchmarks/drift_rule.py [--every 5]
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from demand_forecasting.data.config import load_dataset_config, slugify
from demand_forecasting.data.features import LAGS, WINDOWS
from demand_forecasting.monitoring.drift import CURRENT, REFERENCE, DriftRule, segment_psi

HERE = Path(__file__).resolve().parent
FEATURES = [
    "y",
    *[f"lag_{k}" for k in LAGS],
    *[f"roll_mean_{k}" for k in WINDOWS],
    *[f"roll_std_{k}" for k in WINDOWS],
    "yoy_growth",
]
WINDOW_MONTHS = 12


def history() -> pd.DataFrame:
    """aus_retail as ``segment, series_id, month, y`` (segments as the dataset config says)."""
    config = load_dataset_config("aus_retail")
    raw = pd.read_csv(resources.files("tsdata").joinpath("fpppy/aus_retail.csv"))
    group = config.groups[0].group_of()
    frame = pd.DataFrame(
        {
            "segment": raw["State"].map(slugify) + "__" + raw["Industry"].map(group).map(slugify),
            "series_id": raw["Series ID"],
            "month": pd.to_datetime(raw["Month"]),
            "y": raw["Turnover"].astype(float),
        }
    )
    return frame[frame["month"] >= "2009-01-01"].sort_values(["series_id", "month"])


def with_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Gold's features per series (rolling windows include the row's own month)."""
    out = frame.copy()
    by_series = out.groupby("series_id")["y"]
    for k in LAGS:
        out[f"lag_{k}"] = by_series.shift(k)
    for k in WINDOWS:
        rolling = by_series.rolling(k)
        out[f"roll_mean_{k}"] = rolling.mean().reset_index(level=0, drop=True)
        out[f"roll_std_{k}"] = rolling.std().reset_index(level=0, drop=True)
    out["yoy_growth"] = out["y"] / out["lag_12"] - 1
    return out


def windows(
    reference: pd.DataFrame, current: pd.DataFrame, ref_end: pd.Timestamp, run_month: pd.Timestamp
) -> pd.DataFrame:
    """A segment's reference and current windows, labelled as check_drift labels them."""

    def last(frame: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
        start = end - pd.DateOffset(months=WINDOW_MONTHS)
        return frame[(frame["month"] <= end) & (frame["month"] > start)]

    return pd.concat(
        [
            last(reference, ref_end).assign(window=REFERENCE),
            last(current, run_month).assign(window=CURRENT),
        ]
    )


def retrains(frame: pd.DataFrame, rule: DriftRule) -> bool:
    """Whether the segment breaches on any feature."""
    return bool(segment_psi(frame, FEATURES, rule)["breach"].any())


def main() -> None:
    """Measure (a) and (b); print and record them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=5, help="every n-th month of 2013-2018")
    args = parser.parse_args()
    rule = DriftRule()
    data = history()
    featured = with_features(data)
    by_segment = {s: g for s, g in featured.groupby("segment")}
    months = pd.date_range("2013-01-01", "2018-12-01", freq="MS")[:: args.every]
    results: dict[str, object] = {
        "rule": rule.__dict__,
        "months": len(months),
        "segments": len(by_segment),
    }
    ages = {}
    for age in (1, 3, 6, 12):
        flags = [
            retrains(windows(g, g, m - pd.DateOffset(months=age), m), rule)
            for m in months
            for g in by_segment.values()
        ]
        ages[age] = round(float(np.mean(flags)), 3)
        print(f"champion age {age:2d} months: {ages[age]:.1%} of segment-months retrain")
    results["false_alarm_share_by_age"] = ages
    detection = {}
    for segment in (
        "victoria__food_retailing",
        "tasmania__cafes_restaurants_and_takeaway_food_services",
        "new_south_wales__other_retailing",
    ):
        raw = data[data["segment"] == segment]
        for factor in (0.6, 1.3, 1.6):
            for shifted in (1, 3, 6):
                hits = []
                for m in months:
                    planted = raw.copy()
                    rows = (planted["month"] <= m) & (
                        planted["month"] > m - pd.DateOffset(months=shifted)
                    )
                    planted.loc[rows, "y"] *= factor
                    frame = windows(
                        by_segment[segment], with_features(planted), m - pd.DateOffset(months=1), m
                    )
                    hits.append(retrains(frame, rule))
                key = f"{segment} x{factor} newest {shifted} month(s)"
                detection[key] = round(float(np.mean(hits)), 3)
                print(f"detected {detection[key]:.0%}: {key}")
    results["detection_share"] = detection
    out = HERE / "results" / "drift_rule.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures in {out}")


if __name__ == "__main__":
    main()
