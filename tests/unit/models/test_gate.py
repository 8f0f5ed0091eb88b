"""The promotion gate as a pure function."""

from __future__ import annotations

import math

import pytest

from demand_forecasting.models.gate import GateRule, decide
from demand_forecasting.models.metrics import Accuracy


def acc(mase: float) -> Accuracy:
    return Accuracy(mase=mase, wape=0.05, bias=0.0, pairs=10)


def test_first_candidate_must_beat_seasonal_naive() -> None:
    assert decide(acc(0.8), acc(1.0), None, GateRule()).passed
    refused = decide(acc(1.1), acc(1.0), None, GateRule())
    assert not refused.passed
    assert "does not beat seasonal naive 1.000" in refused.text


def test_candidate_may_trail_the_champion_within_tolerance_only() -> None:
    rule = GateRule(mase_tolerance=0.05)
    assert decide(acc(0.84), acc(1.0), acc(0.80), rule, "3").passed
    refused = decide(acc(0.85), acc(1.0), acc(0.80), rule, "3")
    assert not refused.passed
    assert "worse than champion v3 0.800 by more than 5%" in refused.text


def test_both_failures_are_reported() -> None:
    refused = decide(acc(1.3), acc(1.0), acc(0.8), GateRule())
    assert len(refused.reasons) == 2


def test_no_scorable_forecasts_is_refused() -> None:
    empty = Accuracy(math.nan, math.nan, math.nan, 0)
    assert not decide(empty, acc(1.0), None, GateRule()).passed


def test_tolerance_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="mase_tolerance"):
        GateRule(mase_tolerance=1.5)
