"""The validate group function's figures on a segment with a series launched after zeros."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from demand_forecasting.models.backtest import NAIVE
from demand_forecasting.models.metrics import GATE_METRICS_VERSION
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.segment_evaluation import CANDIDATE, evaluate_segment
from demand_forecasting.models.segment_training import train_segment
from demand_forecasting.models.tracking import BACKTEST_PARAM
from demand_forecasting.models.validate import Contest

SMALL = Recipe(horizon=6).with_overrides(xgb_params={"n_estimators": 40, "learning_rate": 0.2})
ORIGINS = 3


def segment_with_a_launch() -> pd.DataFrame:
    """Four seasonal series, and one written as zeros (a stray 1) until it launched at ~600
    a month inside the backtest's horizons (as PBS's General|Co-payments|D11)."""
    rng = np.random.default_rng(5)
    months = pd.date_range("2010-01-01", periods=96, freq="MS")
    t = np.arange(96)
    frames = []
    for s, scale in enumerate((50.0, 400.0, 90.0, 120.0)):
        y = scale * 1.004**t * (1 + 0.3 * np.sin(2 * np.pi * t / 12 + s))
        y *= np.exp(rng.normal(0, 0.05, 96))
        frames.append(pd.DataFrame({"series_id": f"s{s}", "month": months, "y": y}))
    launch = np.where(t >= 93, 600.0, 0.0)
    launch[40] = 1.0
    frames.append(pd.DataFrame({"series_id": "launched", "month": months, "y": launch}))
    return pd.concat(frames, ignore_index=True)


def test_a_series_launched_after_zeros_does_not_decide_the_segments_gate_figures() -> None:
    history = segment_with_a_launch()

    rows = {r["method"]: r for r in evaluate_segment(history, {CANDIDATE: SMALL}, ORIGINS)}

    # The launched series' scale at the origins is ~0.03 (one stray 1): its per-pair MASE
    # would be ~10,000 and the segment's mean with it. It counts in WAPE, not in MASE.
    for method in (CANDIDATE, NAIVE):
        assert rows[method]["pairs"] == 4 * ORIGINS
        assert rows[method]["mase"] < 5.0
        assert rows[method]["wape"] > 0.2  # the launch's misses are in it
    # train logs the same figures for validate to reuse.
    logged = train_segment("s", history, SMALL, ORIGINS)["backtest"]
    assert isinstance(logged, str) and f'"mase": {rows[CANDIDATE]["mase"]}' in logged


def test_validate_reuses_a_training_backtest_only_under_todays_gate_metric_definition() -> None:
    history = segment_with_a_launch()
    logged = json.loads(str(train_segment("s", history, SMALL, ORIGINS)["backtest"]))
    table, version = "gold.features", 7

    def contest(backtest: dict[str, object]) -> Contest:
        params = {
            "training_table": table,
            "training_table_version": str(version),
            BACKTEST_PARAM: json.dumps(backtest),
        }
        return Contest("s", "1", "run", SMALL.to_json(), None, None, params)

    assert logged["metrics_version"] == GATE_METRICS_VERSION
    assert contest(logged).logged_backtest(table, version, ORIGINS) == logged
    # Logged before the gate left near-zero scales out of MASE (no version: the mean over
    # every pair, the launched series' ~10,000 included): validate backtests again.
    before = {k: v for k, v in logged.items() if k != "metrics_version"}
    assert contest(before).logged_backtest(table, version, ORIGINS) is None
    older = {**logged, "metrics_version": GATE_METRICS_VERSION - 1}
    assert contest(older).logged_backtest(table, version, ORIGINS) is None
