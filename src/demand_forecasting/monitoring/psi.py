"""Population Stability Index (PSI): how far a current sample has moved from a reference.

Pure numpy: bins are fixed from the reference (quantile edges, open-ended outer bins), both
samples are counted into them, and

    PSI = sum_i (current_i - reference_i) * ln(current_i / reference_i)

over the bins' shares. An empty bin gets a share of ``epsilon`` so the logarithm stays
finite. Common reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
Missing values (NaN) are not counted; their numbers are reported beside the index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Share given to an empty bin so that ln(share) is finite.
DEFAULT_EPSILON = 1e-4
DEFAULT_BINS = 10

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PsiResult:
    """The PSI of one feature and how it was computed.

    Attributes:
        psi: the index (NaN when either sample has no values).
        edges: inner bin edges from the reference; bin ``i`` is ``(edges[i-1], edges[i]]``
            with ``-inf`` and ``+inf`` outside (so ``len(edges) + 1`` bins).
        reference_shares, current_shares: share of each sample in each bin (sum to 1).
        n_reference, n_current: values counted (NaN excluded).
    """

    psi: float
    edges: tuple[float, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    n_reference: int
    n_current: int


def _finite(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def quantile_edges(reference: npt.ArrayLike, n_bins: int = DEFAULT_BINS) -> FloatArray:
    """Inner bin edges at the reference's ``1/n .. (n-1)/n`` quantiles, duplicates removed.

    Ties (a constant or discrete feature) collapse edges, so fewer bins may result; a
    constant reference gives one edge (two bins: ``<= value`` and ``> value``).

    Raises:
        ValueError: ``n_bins`` is below 2, or the reference has no finite value.
    """
    if n_bins < 2:
        raise ValueError(f"n_bins={n_bins}: PSI needs at least 2 bins; use 5-10")
    values = _finite(reference)
    if values.size == 0:
        raise ValueError("the reference sample has no finite values: PSI bins cannot be fixed")
    inner = np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], method="linear")
    edges = np.unique(inner)
    # The top inner edge equal to the maximum would leave the last bin always empty in the
    # reference; a constant reference keeps its single edge.
    if edges.size > 1 and edges[-1] >= values.max():
        edges = edges[:-1]
    return edges


def bin_shares(values: npt.ArrayLike, edges: npt.ArrayLike) -> FloatArray:
    """Share of the finite ``values`` in each bin ``(-inf, e1], (e1, e2], ..., (ek, inf)``.

    Returns zeros when there are no finite values.
    """
    sample = _finite(values)
    inner = np.asarray(edges, dtype=np.float64)
    counts = np.bincount(np.searchsorted(inner, sample, side="left"), minlength=inner.size + 1)
    total = counts.sum()
    if total == 0:
        return np.zeros(inner.size + 1)
    return counts / total


def psi_from_shares(
    reference: npt.ArrayLike, current: npt.ArrayLike, epsilon: float = DEFAULT_EPSILON
) -> float:
    """PSI of two share vectors over the same bins; empty bins count as ``epsilon``.

    Raises:
        ValueError: the vectors differ in length, or ``epsilon`` is not in (0, 1).
    """
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon={epsilon}: must be a small positive share, e.g. 1e-4")
    expected = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(current, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(
            f"share vectors differ in length ({expected.size} vs {actual.size}): both must be "
            "counted into the same bins"
        )
    expected = np.clip(expected, epsilon, None)
    actual = np.clip(actual, epsilon, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def population_stability_index(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    n_bins: int = DEFAULT_BINS,
    epsilon: float = DEFAULT_EPSILON,
) -> PsiResult:
    """PSI of ``current`` against ``reference`` with bins fixed from the reference.

    Either sample without finite values gives ``psi = NaN`` (nothing to compare), never
    an error: a feature that is all-missing in a segment is reported, not fatal.
    """
    ref = _finite(reference)
    cur = _finite(current)
    if ref.size == 0 or cur.size == 0:
        return PsiResult(float("nan"), (), (), (), int(ref.size), int(cur.size))
    edges = quantile_edges(ref, n_bins)
    ref_shares = bin_shares(ref, edges)
    cur_shares = bin_shares(cur, edges)
    return PsiResult(
        psi=psi_from_shares(ref_shares, cur_shares, epsilon),
        edges=tuple(float(e) for e in edges),
        reference_shares=tuple(float(s) for s in ref_shares),
        current_shares=tuple(float(s) for s in cur_shares),
        n_reference=int(ref.size),
        n_current=int(cur.size),
    )
