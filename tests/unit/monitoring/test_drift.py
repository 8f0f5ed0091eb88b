"""Drift decisions: the PSI breach rule (threshold + sample-size noise gate) and who retrains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand_forecasting.monitoring import drift


def _segment(reference: np.ndarray, current: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": "s",
            "window": ["reference"] * len(reference) + ["current"] * len(current),
            "y": np.concatenate([reference, current]),
        }
    )


def test_critical_psi_shrinks_with_sample_size() -> None:
    rule = drift.DriftRule()
    small = rule.critical_psi(36, 36, 10)
    large = rule.critical_psi(3600, 3600, 10)
    assert small == pytest.approx(2 / 36 * 21.67, rel=0.01)
    assert large < 0.02 < small


def test_noise_gate_off_leaves_the_plain_threshold() -> None:
    rule = drift.DriftRule(significance=0.0)
    assert rule.critical_psi(36, 36, 10) == 0.0
    assert rule.is_breach(0.21, 0.0) and not rule.is_breach(0.19, 0.0)
    assert not rule.is_breach(float("nan"), 0.0)


def test_a_large_shift_breaches_and_the_same_distribution_does_not() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(100, 10, 240)
    stable = drift.segment_psi(
        _segment(reference, rng.normal(100, 10, 240)), ["y"], drift.DriftRule()
    )
    shifted = drift.segment_psi(
        _segment(reference, rng.normal(125, 10, 240)), ["y"], drift.DriftRule()
    )
    assert not stable.loc[0, "breach"]
    assert shifted.loc[0, "breach"] and shifted.loc[0, "psi"] > 1.0
    assert list(shifted.columns) == [c.split()[0] for c in drift.PSI_SCHEMA.split(", ")]


def test_small_samples_need_more_than_the_threshold() -> None:
    # 12 values a side: PSI of pure noise is often above 0.2; the gate keeps it a non-breach.
    rng = np.random.default_rng(0)
    result = drift.segment_psi(
        _segment(rng.normal(0, 1, 12), rng.normal(0, 1, 12)), ["y"], drift.DriftRule()
    )
    assert result.loc[0, "psi"] > 0.2
    assert result.loc[0, "psi"] < result.loc[0, "psi_critical"]
    assert not result.loc[0, "breach"]


def test_a_feature_missing_in_the_current_window_is_reported_not_a_breach() -> None:
    frame = _segment(np.arange(24.0), np.array([np.nan, np.nan]))
    result = drift.segment_psi(frame, ["y"], drift.DriftRule())
    assert np.isnan(result.loc[0, "psi"]) and not result.loc[0, "breach"]
    assert result.loc[0, "n_current"] == 0


def test_decide_retrains_breaching_and_championless_segments_only() -> None:
    decision = drift.decide(
        segments=["a", "b", "c", "d", "e"],
        breaching=["b", "d"],
        without_champion=["c"],
        already_retrained=["d"],
        without_reference=["e"],
    )
    assert decision.segments_to_train == ("b", "c", "e")
    assert decision.retrain_count == 3
    assert decision.decisions == {
        "a": drift.KEEP,
        "b": drift.RETRAIN_DRIFT,
        "c": drift.RETRAIN_NO_CHAMPION,
        "d": drift.ALREADY_RETRAINED,
        "e": drift.RETRAIN_NO_REFERENCE,
    }


def test_a_recently_refused_segment_without_champion_waits() -> None:
    decision = drift.decide(
        segments=["a", "b", "c"],
        breaching=["a"],
        without_champion=["b", "c"],
        recently_refused=["c", "a"],
    )
    assert decision.segments_to_train == ("a", "b")
    assert decision.decisions == {
        "a": drift.RETRAIN_DRIFT,  # has a champion: drift decides, not the refusal
        "b": drift.RETRAIN_NO_CHAMPION,
        "c": drift.WAIT_REFUSED,
    }


def test_a_segment_without_champion_and_too_little_history_waits_for_it() -> None:
    decision = drift.decide(
        segments=["a", "b", "c"],
        breaching=[],
        without_champion=["b", "c"],
        recently_refused=["c"],
        short_history=["b", "c"],
    )
    assert decision.segments_to_train == ()
    assert decision.decisions == {"a": drift.KEEP, "b": drift.WAIT_HISTORY, "c": drift.WAIT_HISTORY}


def test_a_seasonal_naive_fallback_champion_retries_a_model_unless_refused_recently() -> None:
    decision = drift.decide(
        segments=["a", "b", "c", "d"],
        breaching=["b"],
        without_champion=[],
        already_retrained=["d"],
        recently_refused=["b"],
        fallback=["a", "b", "d"],
    )
    assert decision.segments_to_train == ("a",)
    assert decision.decisions == {
        "a": drift.RETRAIN_FALLBACK,
        "b": drift.WAIT_REFUSED,  # drift or not: a model of nearly the same data was refused
        "c": drift.KEEP,
        "d": drift.ALREADY_RETRAINED,  # the fallback is this month's
    }


def test_a_challenger_awaiting_approval_too_long_is_retrained_unless_refused_recently() -> None:
    # a and b have no champion, c and d the fallback; each has a challenger awaiting approval.
    decision = drift.decide(
        segments=["a", "b", "c", "d", "e"],
        breaching=[],
        without_champion=["a", "b"],
        fallback=["c", "d"],
        recently_refused=["d"],
        awaiting_approval=["a", "b", "c", "d", "e"],
        approval_overdue=["b", "c", "d", "e"],
    )
    assert decision.segments_to_train == ("b", "c")
    assert decision.decisions == {
        "a": drift.WAIT_APPROVAL,  # not waited long enough yet
        "b": drift.RETRAIN_APPROVAL_OVERDUE,
        "c": drift.RETRAIN_APPROVAL_OVERDUE,
        "d": drift.WAIT_REFUSED,  # its refresh was refused: the refusal's own retry rule
        "e": drift.KEEP,  # a champion of its own: approval waits do not retrain it
    }


def test_a_champion_of_another_horizon_retrains_unless_retrained_this_month_or_waiting() -> None:
    decision = drift.decide(
        segments=["a", "b", "c", "d"],
        breaching=[],
        without_champion=[],
        already_retrained=["b"],
        recently_refused=["c"],
        fallback=["c"],
        other_horizon=["a", "b", "c"],
    )
    assert decision.segments_to_train == ("a",)
    assert decision.decisions == {
        "a": drift.RETRAIN_HORIZON,
        "b": drift.ALREADY_RETRAINED,  # a rerun of the month retrains nothing again
        "c": drift.WAIT_REFUSED,  # the fallback's own retry rule
        "d": drift.KEEP,
    }


def test_a_month_without_drift_retrains_nothing() -> None:
    decision = drift.decide(["a", "b"], breaching=[], without_champion=[])
    assert decision.segments_to_train == () and decision.retrain_count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "psi_threshold"),
        ({"significance": 1.0}, "drift_significance"),
        ({"n_bins": 1}, "drift_bins"),
    ],
)
def test_rule_settings_are_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        drift.DriftRule(**kwargs)  # type: ignore[arg-type]


def test_drift_features_are_the_target_and_gold_features_but_not_the_calendar() -> None:
    from demand_forecasting.monitoring.check_drift import drift_features

    columns = [
        "series_id",
        "segment",
        "month",
        "y",
        "lag_1",
        "roll_std_12",
        "yoy_growth",
        "month_of_year",
        "quarter",
        "year",
        "is_gap",
    ]
    assert drift_features(columns) == ["y", "lag_1", "roll_std_12", "yoy_growth"]


def test_months_are_added_across_years() -> None:
    from datetime import date

    from demand_forecasting.data.config import add_month

    assert add_month(date(2016, 1, 1), -11) == date(2015, 2, 1)
    assert add_month(date(2015, 12, 1), 1) == date(2016, 1, 1)


def test_psi_by_segment_is_segment_psi_of_each_segment_in_segment_order() -> None:
    rng = np.random.default_rng(3)
    frame = pd.concat(
        [
            _segment(rng.normal(100, 10, 36), rng.normal(shift, 10, 36)).assign(segment=name)
            for name, shift in (("b", 130.0), ("a", 100.0))
        ],
        ignore_index=True,
    ).sample(frac=1.0, random_state=1)  # rows in any order, as Spark hands them over
    rule = drift.DriftRule()

    both = drift.psi_by_segment(frame, ["y"], rule)

    expected = pd.concat(
        [drift.segment_psi(frame[frame["segment"] == s], ["y"], rule) for s in ("a", "b")],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(both, expected)
    assert both["breach"].tolist() == [False, True]
    assert list(drift.psi_by_segment(frame.iloc[0:0], ["y"], rule).columns) == drift.PSI_COLUMNS
