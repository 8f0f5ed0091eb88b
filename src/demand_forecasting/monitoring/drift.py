"""Drift of each segment's features and target, and which segments to retrain. Pure pandas.

A segment's rows come in two windows: ``reference`` (the last months of the data its
champion was trained on) and ``current`` (the newest months). Per feature, the PSI of the
current window against the reference (bins fixed from the reference) is a *breach* when

- it exceeds the threshold (default 0.2, the usual "significant shift"), and
- it exceeds what sampling noise alone gives at this sample size with probability
  ``significance``: under no drift, PSI is about ``(1/n_ref + 1/n_cur) * chi2(bins - 1)``
  (Yurdakul & Naranjo, 2019). A segment of three series has ~36 values a year; at that size
  noise alone often passes 0.2, and the noise gate keeps it from retraining every month.

A segment is retrained when any of its features breaches, or when it has no champion, or
when its champion is the seasonal-naive fallback (a real model is retried); the last two wait
while their newest candidate's refusal is recent, or while their challenger awaits a
person's approval (up to ``approval_wait_months``), and one without champion waits until it
has the months of history a model needs. A champion that forecasts another horizon
than the bundle's ``horizon`` is retrained too: a changed horizon reaches every segment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

import pandas as pd

from demand_forecasting.data.config import add_month
from demand_forecasting.monitoring.psi import DEFAULT_EPSILON, population_stability_index

REFERENCE, CURRENT = "reference", "current"
WINDOW = "window"
SEGMENT = "segment"

#: Segment decisions, as the drift table records them.
RETRAIN_DRIFT = "retrain_drift"
RETRAIN_NO_CHAMPION = "retrain_no_champion"
RETRAIN_NO_REFERENCE = "retrain_no_reference"
#: The champion is the seasonal-naive fallback: a real model is tried again.
RETRAIN_FALLBACK = "retrain_fallback"
#: The champion forecasts another horizon than the bundle's ``horizon`` (it was changed).
RETRAIN_HORIZON = "retrain_horizon"
KEEP = "keep"
ALREADY_RETRAINED = "already_retrained"
#: No champion (or the fallback), and its newest candidate was refused recently: not
#: retried every month.
WAIT_REFUSED = "wait_refused"
#: No champion, and fewer months of history than a model needs: not trained until it has
#: them (:data:`~demand_forecasting.models.features.MIN_HISTORY_MONTHS`).
WAIT_HISTORY = "wait_history"
#: No champion (or the fallback), and a challenger awaits a person's approval
#: (``require_approval``): not retrained, so the version under review is not superseded by
#: a new candidate every month while it waits.
WAIT_APPROVAL = "wait_approval"
#: No champion (or the fallback), and its challenger has awaited approval longer than the
#: bundle's ``approval_wait_months``: retrained, so that a segment nobody approves does not
#: stay without a model of recent data forever (a passing candidate supersedes the old one).
RETRAIN_APPROVAL_OVERDUE = "retrain_approval_overdue"
RETRAIN_DECISIONS = (
    RETRAIN_DRIFT,
    RETRAIN_NO_CHAMPION,
    RETRAIN_NO_REFERENCE,
    RETRAIN_FALLBACK,
    RETRAIN_HORIZON,
    RETRAIN_APPROVAL_OVERDUE,
)

#: Columns of :func:`segment_psi`'s output (the Spark schema of the grouped apply).
PSI_SCHEMA = (
    "segment string, feature string, psi double, psi_critical double, breach boolean, "
    "n_reference long, n_current long, bin_edges array<double>, "
    "reference_shares array<double>, current_shares array<double>"
)
#: Their names, in order.
PSI_COLUMNS = [column.split()[0] for column in PSI_SCHEMA.split(", ")]


@dataclass(frozen=True)
class DriftRule:
    """How PSI becomes a breach.

    Raises:
        ValueError: a setting out of range, naming it and the accepted range.
    """

    threshold: float = 0.2
    significance: float = 0.01
    n_bins: int = 10
    epsilon: float = DEFAULT_EPSILON

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ValueError(f"psi_threshold={self.threshold}: must be > 0 (0.2 is usual)")
        if not 0 <= self.significance < 1:
            raise ValueError(
                f"drift_significance={self.significance}: must be in [0, 1) (0 turns the "
                "sample-size noise gate off; 0.01 is the default)"
            )
        if self.n_bins < 2:
            raise ValueError(f"drift_bins={self.n_bins}: must be at least 2 (10 is usual)")

    def critical_psi(self, n_reference: int, n_current: int, n_bins: int) -> float:
        """PSI that sampling noise alone exceeds with probability ``significance``."""
        if self.significance == 0 or n_bins < 2 or n_reference == 0 or n_current == 0:
            return 0.0
        return (1 / n_reference + 1 / n_current) * chi2_quantile(1 - self.significance, n_bins - 1)

    def is_breach(self, psi: float, critical: float) -> bool:
        """True when ``psi`` is a drift, not noise (NaN is never a breach)."""
        return not math.isnan(psi) and psi > self.threshold and psi > critical


def chi2_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of chi-square with ``dof`` degrees of freedom (Wilson-Hilferty).

    Within about 1% of the exact value for ``dof >= 1`` and ``p`` in [0.9, 0.999].
    """
    z = NormalDist().inv_cdf(p)
    h = 2 / (9 * dof)
    return dof * (1 - h + z * math.sqrt(h)) ** 3


def segment_psi(frame: pd.DataFrame, features: Sequence[str], rule: DriftRule) -> pd.DataFrame:
    """PSI of each feature for one segment's rows (a ``window`` column says which window).

    Args:
        frame: one segment's rows: ``segment``, ``window`` (``reference``/``current``) and
            the feature columns.
        features: the columns to compare (features and target).
        rule: bins, epsilon and breach rule.

    Returns:
        One row per feature with the columns of :data:`PSI_SCHEMA`.
    """
    segment = str(frame[SEGMENT].iloc[0]) if len(frame) else ""
    reference = frame[frame[WINDOW] == REFERENCE]
    current = frame[frame[WINDOW] == CURRENT]
    rows = []
    for feature in features:
        result = population_stability_index(
            pd.to_numeric(reference[feature], errors="coerce"),
            pd.to_numeric(current[feature], errors="coerce"),
            n_bins=rule.n_bins,
            epsilon=rule.epsilon,
        )
        critical = rule.critical_psi(
            result.n_reference, result.n_current, len(result.reference_shares)
        )
        rows.append(
            {
                "segment": segment,
                "feature": feature,
                "psi": result.psi,
                "psi_critical": critical,
                "breach": rule.is_breach(result.psi, critical),
                "n_reference": result.n_reference,
                "n_current": result.n_current,
                "bin_edges": list(result.edges),
                "reference_shares": list(result.reference_shares),
                "current_shares": list(result.current_shares),
            }
        )
    return pd.DataFrame(rows, columns=PSI_COLUMNS)


def psi_by_segment(frame: pd.DataFrame, features: Sequence[str], rule: DriftRule) -> pd.DataFrame:
    """:func:`segment_psi` of every segment in ``frame``, in segment order, in this process.

    The same function Spark applies per group (``applyInPandas``), so both give the same
    rows; this one avoids a Spark job and its Python workers when the rows are few.
    """
    results = [segment_psi(rows, features, rule) for _, rows in frame.groupby(SEGMENT, sort=True)]
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame(columns=PSI_COLUMNS)


@dataclass(frozen=True)
class DriftDecision:
    """Which segments retrain, and why each segment got its decision."""

    segments_to_train: tuple[str, ...]
    decisions: Mapping[str, str]

    @property
    def retrain_count(self) -> int:
        """How many segments retrain."""
        return len(self.segments_to_train)


def decide(
    segments: Iterable[str],
    breaching: Iterable[str],
    without_champion: Iterable[str],
    already_retrained: Iterable[str] = (),
    without_reference: Iterable[str] = (),
    recently_refused: Iterable[str] = (),
    fallback: Iterable[str] = (),
    other_horizon: Iterable[str] = (),
    kept_champion: Iterable[str] = (),
    short_history: Iterable[str] = (),
    awaiting_approval: Iterable[str] = (),
    approval_overdue: Iterable[str] = (),
) -> DriftDecision:
    """The retraining decision of a run month.

    Args:
        segments: every segment with data.
        breaching: segments with at least one breaching feature.
        without_champion: segments with no ``champion`` model.
        already_retrained: segments whose champion was trained on this run month's data
            already (a rerun of the month): never retrained again.
        without_reference: segments whose champion's training data cannot be read any more
            (untagged, or its Delta version vacuumed): retrained to get a reference again.
        recently_refused: segments without a champion (or with the fallback) whose newest
            candidate validation refused recently: they wait instead of retraining (a
            candidate of nearly the same data would most likely be refused again).
        fallback: segments whose champion is the seasonal-naive fallback.
        other_horizon: segments whose champion forecasts another horizon than the bundle's.
        kept_champion: segments with a champion of their own whose candidate of this run
            month validation refused (a rerun of the month): they wait for the next month.
        short_history: segments with fewer months of history than a model needs: without
            a champion they wait instead of failing in train every month.
        awaiting_approval: segments whose challenger awaits approval: without a champion
            (or with the fallback) they wait for the approver instead of retraining.
        approval_overdue: of those, the ones whose challenger has waited longer than the
            bundle allows (:func:`approval_refresh_month`): retrained like a segment with
            nothing awaiting, unless their newest candidate was refused recently.
    """
    breach, missing, done = set(breaching), set(without_champion), set(already_retrained)
    unreadable, waiting, naive = set(without_reference), set(recently_refused), set(fallback)
    stale_horizon, kept, young = set(other_horizon), set(kept_champion), set(short_history)
    pending = set(awaiting_approval) - set(approval_overdue)
    overdue = set(approval_overdue)
    decisions: dict[str, str] = {}
    for segment in sorted(set(segments)):
        if segment in missing and segment in young:
            decisions[segment] = WAIT_HISTORY
        elif segment in missing and segment in pending:
            decisions[segment] = WAIT_APPROVAL
        elif segment in missing:
            decisions[segment] = (
                WAIT_REFUSED
                if segment in waiting
                else RETRAIN_APPROVAL_OVERDUE
                if segment in overdue
                else RETRAIN_NO_CHAMPION
            )
        elif segment in unreadable:
            decisions[segment] = RETRAIN_NO_REFERENCE
        elif segment in done:
            decisions[segment] = ALREADY_RETRAINED
        elif segment in kept:
            decisions[segment] = WAIT_REFUSED
        elif segment in naive and segment in pending:
            decisions[segment] = WAIT_APPROVAL
        elif segment in naive:
            decisions[segment] = (
                WAIT_REFUSED
                if segment in waiting
                else RETRAIN_APPROVAL_OVERDUE
                if segment in overdue
                else RETRAIN_FALLBACK
            )
        elif segment in stale_horizon:
            decisions[segment] = RETRAIN_HORIZON
        elif segment in breach:
            decisions[segment] = RETRAIN_DRIFT
        else:
            decisions[segment] = KEEP
    chosen = tuple(s for s, d in decisions.items() if d in RETRAIN_DECISIONS)
    return DriftDecision(chosen, decisions)


def approval_refresh_month(trained_until: date, wait_months: int) -> date:
    """The first run month in which ``check_drift`` retrains a segment without a champion
    (or on the fallback) whose challenger, trained on data up to ``trained_until``, still
    awaits approval: once it has waited more than ``wait_months`` months (0: from the month
    after its own). Measured from the version's ``trained_until`` tag, which never changes,
    in data months, as ``refused_retry_months`` is."""
    return add_month(trained_until.replace(day=1), wait_months + 1)
