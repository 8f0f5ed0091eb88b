"""The promotion gate: may a candidate become champion? A pure function of backtest figures.

Rules (thresholds from the bundle, never from code):

1. the candidate has scorable backtest forecasts;
2. its MASE beats seasonal naive's on the same series and origins;
3. with a champion, its MASE is not worse than the champion's by more than ``mase_tolerance``
   (relative: 0.02 allows 2% worse, for the sake of fresher data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from demand_forecasting.models.metrics import Accuracy


@dataclass(frozen=True)
class GateRule:
    """The gate's thresholds.

    Attributes:
        mase_tolerance: how much worse than the champion (relative MASE) still passes.
    """

    mase_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 <= self.mase_tolerance < 1.0:
            raise ValueError(
                f"mase_tolerance={self.mase_tolerance}: must be within [0, 1) "
                "(a relative MASE margin; bundle variable mase_tolerance)"
            )


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict and why."""

    passed: bool
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reasons as one line."""
        return "; ".join(self.reasons)


def decide(
    candidate: Accuracy,
    naive: Accuracy,
    champion: Accuracy | None,
    rule: GateRule,
    champion_version: str | None = None,
) -> GateDecision:
    """Apply the gate to a candidate's backtest accuracy.

    Args:
        candidate: the candidate's accuracy.
        naive: seasonal naive on the same rows.
        champion: the current champion's accuracy on the same rows (None: no champion).
        rule: thresholds.
        champion_version: for the reasons' text.
    """
    if candidate.pairs == 0 or not math.isfinite(candidate.mase):
        return GateDecision(
            False,
            ("no scorable backtest forecasts (too little history before the backtest origins?)",),
        )
    failures, notes = [], []
    if math.isfinite(naive.mase) and candidate.mase >= naive.mase:
        failures.append(f"MASE {candidate.mase:.3f} does not beat seasonal naive {naive.mase:.3f}")
    else:
        notes.append(f"MASE {candidate.mase:.3f} beats seasonal naive {naive.mase:.3f}")
    if champion is not None and math.isfinite(champion.mase):
        limit = champion.mase * (1.0 + rule.mase_tolerance)
        label = f"champion v{champion_version}" if champion_version else "champion"
        if candidate.mase > limit:
            failures.append(
                f"MASE {candidate.mase:.3f} is worse than {label} "
                f"{champion.mase:.3f} by more than {rule.mase_tolerance:.0%}"
            )
        else:
            notes.append(f"within {rule.mase_tolerance:.0%} of {label} {champion.mase:.3f}")
    elif champion is None:
        notes.append("no champion yet")
    if failures:
        return GateDecision(False, tuple(failures))
    return GateDecision(True, tuple(notes))
