"""The deployment audit trail: one Delta row per promotion, rollback, approval request.

Who (actor), what (segment, model, from version, to version, artifact hash), when, why
(reason), and from which training run. Append-only; nothing in this project updates it.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

import pandas as pd

from demand_forecasting import names
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import rows_frame

PROMOTE, ROLLBACK, AWAITING_APPROVAL, APPROVE = (
    "promote",
    "rollback",
    "awaiting_approval",
    "approve",
)

AUDIT_SCHEMA = (
    "audit_id string, at timestamp, segment string, model_name string, action string, "
    "from_version string, to_version string, run_id string, actor string, reason string, "
    "model_artifact_hash string, target string, job_run_id string"
)


@dataclass(frozen=True)
class AuditEvent:
    """One governed change of a segment's champion (or a request for one)."""

    segment: str
    model_name: str
    action: str
    from_version: str | None
    to_version: str
    run_id: str | None
    actor: str
    reason: str
    model_artifact_hash: str | None
    target: str
    job_run_id: str | None = None


def current_actor(ctx: RunContext) -> str:
    """The identity doing the change: Spark's ``current_user()`` (the job's run-as identity
    on Databricks, the OS user locally)."""
    row = ctx.spark.sql("SELECT current_user() AS actor").first()
    return str(row["actor"]) if row is not None else "unknown"


def write_audit(ctx: RunContext, events: list[AuditEvent]) -> None:
    """Append ``events`` to the audit table (created on first use)."""
    if not events:
        return
    # An aware timestamp through Arrow: the instant is kept whatever the session's time zone
    # (a naive one would be read as wall time in it).
    at: datetime = ctx.clock()
    rows = [{"audit_id": str(uuid.uuid4()), "at": at, **asdict(e)} for e in events]
    frame = rows_frame(ctx.spark, pd.DataFrame(rows), AUDIT_SCHEMA)
    ctx.tables.write(frame, ctx.table(names.AUDIT), mode="append")
