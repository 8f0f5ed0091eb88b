"""Forecast accuracy: MASE, WAPE and bias, as the benchmark protocol defines them.

- MASE per (series, origin): mean absolute error over the horizons, divided by the in-sample
  mean absolute seasonal difference ``|y_t - y_{t-12}|`` of the data up to the origin; a
  method's MASE is the mean over its (series, origin) pairs.
- the gate's MASE of a segment (:func:`segment_accuracy`): the same mean, leaving out the
  pairs whose scale is below :data:`MIN_SCALE_SHARE` of the segment's median scale. A series
  that was (almost) all zeros before the origin, then launched, has a scale near zero and a
  per-pair MASE in the hundreds that would decide the mean alone (PBS,
  ``benchmarks/README.md``, "Near-zero series and the gate").
- WAPE: sum of absolute errors over sum of actuals (overall, so big series weigh more).
- bias: sum of errors (forecast - actual) over sum of actuals; > 0 over-forecasts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: In a segment's gate MASE, pairs whose scale is below this share of the segment's median
#: scale count in WAPE and bias, not in MASE (as a zero scale never did).
MIN_SCALE_SHARE = 0.01
#: Version of the gate's accuracy definition (:func:`segment_accuracy`). Train logs it with
#: its backtest, and validate reuses a logged backtest only when it carries this version:
#: figures computed under another definition (version 1, before :data:`MIN_SCALE_SHARE`:
#: the mean over every pair) do not compare with figures computed now. Raise it whenever
#: :func:`segment_accuracy` changes what it measures.
GATE_METRICS_VERSION = 2


@dataclass(frozen=True)
class Accuracy:
    """A method's accuracy over a set of forecasts.

    Attributes:
        mase: mean MASE over (series, origin) pairs (NaN when none is scorable).
        wape: sum |error| / sum actual.
        bias: sum error / sum actual.
        pairs: (series, origin) pairs scored.
    """

    mase: float
    wape: float
    bias: float
    pairs: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}mase``, ``{prefix}wape``, ``{prefix}bias``, ``{prefix}pairs``."""
        return {
            f"{prefix}mase": self.mase,
            f"{prefix}wape": self.wape,
            f"{prefix}bias": self.bias,
            f"{prefix}pairs": float(self.pairs),
        }


def seasonal_scale(values: np.ndarray, season: int = 12) -> np.ndarray:
    """Per column, the mean absolute seasonal difference of ``values`` (``T x S``, NaN gaps).

    NaN where a series has no pair of observations a season apart.
    """
    if values.shape[0] <= season:
        return np.full(values.shape[1], np.nan)
    diffs = np.abs(values[season:] - values[:-season])
    counts = (~np.isnan(diffs)).sum(axis=0)
    sums = np.nansum(diffs, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def accuracy(frame: pd.DataFrame, forecast: str, min_scale_share: float = 0.0) -> Accuracy:
    """Accuracy of column ``forecast`` in a backtest frame.

    Args:
        frame: rows with ``series_id``, ``origin``, ``actual``, ``scale`` (the in-sample
            seasonal scale at the origin) and the forecast column.
        forecast: name of the forecast column.
        min_scale_share: pairs whose scale is below this share of the median scale of the
            frame's pairs are left out of MASE (0: only zero scales, the protocol).

    Rows without an actual or a forecast are left out; a (series, origin) pair whose scale
    is zero, unknown or below ``min_scale_share`` of the median counts in WAPE and bias but
    not in MASE.
    """
    scored = frame.dropna(subset=["actual", forecast])
    if scored.empty:
        return Accuracy(float("nan"), float("nan"), float("nan"), 0)
    error = scored[forecast] - scored["actual"]
    total = float(scored["actual"].abs().sum())
    per_pair = (
        scored.assign(abs_error=error.abs())
        .groupby(["series_id", "origin"], sort=False)
        .agg(mae=("abs_error", "mean"), scale=("scale", "first"))
    )
    per_pair = per_pair[per_pair["scale"] > 0]
    per_pair = per_pair[per_pair["scale"] >= min_scale_share * per_pair["scale"].median()]
    mase = float((per_pair["mae"] / per_pair["scale"]).mean()) if len(per_pair) else np.nan
    return Accuracy(
        mase=mase,
        wape=float(error.abs().sum()) / total if total > 0 else float("nan"),
        bias=float(error.sum()) / total if total > 0 else float("nan"),
        pairs=len(per_pair),
    )


def segment_accuracy(frame: pd.DataFrame, forecast: str) -> Accuracy:
    """The gate's accuracy of one segment's backtest frame: :func:`accuracy` without the
    pairs whose scale is below :data:`MIN_SCALE_SHARE` of the segment's median scale."""
    return accuracy(frame, forecast, MIN_SCALE_SHARE)
