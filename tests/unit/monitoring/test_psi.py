"""Population Stability Index: bins from the reference, open-ended tails, empty bins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demand_forecasting.monitoring.psi import (
    bin_shares,
    population_stability_index,
    psi_from_shares,
    quantile_edges,
)


def test_identical_samples_have_zero_psi() -> None:
    sample = np.random.default_rng(1).normal(100, 10, 500)
    result = population_stability_index(sample, sample)
    assert result.psi == pytest.approx(0.0, abs=1e-12)
    assert len(result.edges) == 9 and len(result.reference_shares) == 10


def test_two_samples_of_one_distribution_stay_below_0_1() -> None:
    rng = np.random.default_rng(2)
    result = population_stability_index(rng.normal(100, 10, 2000), rng.normal(100, 10, 2000))
    assert result.psi < 0.1


def test_a_shift_of_half_a_standard_deviation_breaches_0_2() -> None:
    rng = np.random.default_rng(3)
    result = population_stability_index(rng.normal(100, 10, 2000), rng.normal(108, 10, 2000))
    assert result.psi > 0.2


def test_values_beyond_the_reference_fall_in_the_open_outer_bins() -> None:
    edges = quantile_edges(np.arange(1.0, 11.0), n_bins=5)
    shares = bin_shares([-1e9, 1e9, 1e9, 1e9], edges)
    assert shares[0] == pytest.approx(0.25) and shares[-1] == pytest.approx(0.75)


def test_bins_are_right_closed() -> None:
    edges = np.array([1.0, 2.0])
    assert bin_shares([1.0, 2.0, 2.5], edges).tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_empty_bins_count_as_epsilon_so_psi_stays_finite() -> None:
    value = psi_from_shares([0.5, 0.5], [1.0, 0.0], epsilon=1e-4)
    expected = 0.5 * math.log(1.0 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert value == pytest.approx(expected)


def test_ties_collapse_edges_and_a_constant_reference_keeps_two_bins() -> None:
    assert quantile_edges([3.0] * 20, n_bins=10).tolist() == [3.0]
    result = population_stability_index([3.0] * 20, [3.0, 4.0])
    assert result.reference_shares == (1.0, 0.0)
    assert result.current_shares == (0.5, 0.5)
    assert result.psi > 0.2


def test_missing_values_are_not_counted() -> None:
    result = population_stability_index([1.0, 2.0, np.nan, 3.0], [np.nan, 2.0])
    assert (result.n_reference, result.n_current) == (3, 1)


def test_an_empty_sample_gives_nan_not_an_error() -> None:
    result = population_stability_index([1.0, 2.0], [np.nan])
    assert math.isnan(result.psi) and result.n_current == 0


@pytest.mark.parametrize("bins", [0, 1])
def test_fewer_than_two_bins_is_refused(bins: int) -> None:
    with pytest.raises(ValueError, match="at least 2 bins"):
        quantile_edges([1.0, 2.0], bins)


def test_share_vectors_of_different_bins_are_refused() -> None:
    with pytest.raises(ValueError, match="same bins"):
        psi_from_shares([0.5, 0.5], [1.0])
