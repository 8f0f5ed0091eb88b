"""Which job run took the retraining decisions the report shows, and what this run retrained
(pure; for :mod:`demand_forecasting.monitoring.report`).

check_drift decides a month once: a rerun of the month keeps the drift rows (and so the
decision) of every segment already retrained, or whose candidate was refused, that month, and
retrains none of them (:mod:`demand_forecasting.monitoring.check_drift`). The drift table's
``decided_by_job_run`` and ``decided_at`` say whose decision each row is; without them a
rerun's report showed the first run's decisions as if the rerun had taken them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

#: The prefix of every decision that sends a segment to train (``retrain_drift``, ...).
RETRAIN = "retrain_"

#: The task that retrains the segments check_drift names.
TRAIN_TASK = "train"


def trained_in_run(telemetry: pd.DataFrame) -> list[str] | None:
    """The segments the job run's train task trained, from its measured seconds (every
    attempt); ``[]`` when train did not run; None when the run's task times are not known
    (no job run, or none recorded)."""
    if telemetry.empty or "task" not in telemetry.columns:
        return None
    found: set[str] = set()
    rows = telemetry[telemetry["task"] == TRAIN_TASK]
    for value in rows.get("segment_seconds", pd.Series(dtype=object)):
        if isinstance(value, Mapping):
            found.update(str(k) for k in value)
        elif isinstance(value, list | tuple):
            found.update(str(pair[0]) for pair in value)
    return sorted(found)


@dataclass(frozen=True)
class Decider:
    """One job run's share of the month's decisions."""

    job_run_id: str | None
    decided_at: str
    segments: list[str]
    #: Of ``segments``, those it sent to retraining.
    retrained: list[str]


def deciders(drift: pd.DataFrame) -> list[Decider]:
    """The job runs that took the decisions in ``drift`` (one row per segment and feature,
    with ``decided_by_job_run``, ``decided_at``), oldest first; empty when the table does not
    record them."""
    if drift.empty or "decided_by_job_run" not in drift.columns:
        return []
    per_segment = drift.drop_duplicates("segment").copy()
    per_segment["_run"] = (
        per_segment["decided_by_job_run"]
        .astype(object)
        .where(per_segment["decided_by_job_run"].notna(), None)
    )
    per_segment["_at"] = pd.to_datetime(per_segment["decided_at"], utc=True)
    found = []
    for run, rows in per_segment.groupby("_run", dropna=False, sort=False):
        moment = rows["_at"].min()
        found.append(
            Decider(
                None if pd.isna(run) else str(run),
                "" if pd.isna(moment) else f"{moment:%Y-%m-%d %H:%M} UTC",
                sorted(rows["segment"]),
                sorted(rows.loc[rows["decision"].str.startswith(RETRAIN), "segment"]),
            )
        )
    return sorted(found, key=lambda d: d.decided_at)


def _named(decider: Decider) -> str:
    if decider.job_run_id is None:
        return "an earlier run that recorded no job run id"
    return f"job run `{decider.job_run_id}`" + (
        f" at {decider.decided_at}" if decider.decided_at else ""
    )


def provenance(
    drift: pd.DataFrame, job_run_id: str | None, telemetry: pd.DataFrame, run_month: date
) -> tuple[str, list[str]]:
    """``(summary suffix, section lines)``: who took the month's decisions and, on a rerun,
    that this run kept an earlier run's and what it retrained itself."""
    runs = deciders(drift)
    if not runs:
        return "", []
    earlier = [d for d in runs if job_run_id is None or d.job_run_id != job_run_id]
    own = [d for d in runs if job_run_id is not None and d.job_run_id == job_run_id]
    if not earlier:
        return "", [f"Decided by this job run's check_drift ({_named(own[0])}).", ""]
    if job_run_id is None:  # the report of no particular run: name them, claim nothing more
        return "", ["Decided by " + "; ".join(_named(d) for d in runs) + ".", ""]
    trained = trained_in_run(telemetry)
    kept = sorted(s for d in earlier for s in d.segments)
    sent = sorted(s for d in earlier for s in d.retrained)
    lines = [
        f"**This job run (`{job_run_id}`) is a rerun of {run_month:%Y-%m}.** The decisions of "
        f"{len(kept)} segment(s) are an earlier run's, kept: "
        + "; ".join(f"{_named(d)} ({len(d.segments)})" for d in earlier)
        + ". check_drift decides a month once: a rerun keeps the decision of a segment "
        "already retrained (or whose candidate was refused) this month, and does not retrain "
        "it again."
        + (
            f" This job run decided the other {sum(len(d.segments) for d in own)} segment(s) "
            "itself."
            if own
            else ""
        ),
        "",
    ]
    if trained is not None:
        lines += [_rerun_outcome(trained, sent), ""]
    suffix = (
        f" ({len(kept)} of them kept from {', '.join(_named(d) for d in earlier)}; "
        + (
            f"this rerun retrained {len(trained)}: {', '.join(trained)}"
            if trained
            else "this rerun retrained nothing"
            if trained is not None
            else "what this rerun retrained is not known"
        )
        + ")"
    )
    return suffix, lines


def _rerun_outcome(trained: list[str], sent: list[str]) -> str:
    """What the rerun itself retrained, set against the kept decisions to retrain."""
    if not trained:
        return "This rerun retrained nothing" + (
            f": the {len(sent)} segment(s) the kept decisions sent to retraining had been "
            "retrained (or refused) this month already."
            if sent
            else "."
        )
    return f"This rerun retrained {len(trained)} segment(s): {', '.join(trained)}."
