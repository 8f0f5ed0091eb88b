"""The audit and evaluation tables keep the instant of a change whatever the session time zone.

Databricks sessions can run with ``spark.sql.session.timeZone`` set to a local zone; a naive
timestamp sent to Spark is read as wall time in that zone and stored hours off.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql.types import StructType, _parse_datatype_string

from demand_forecasting import names
from demand_forecasting.models.audit import PROMOTE, AuditEvent, write_audit
from demand_forecasting.models.validate import EVALUATION_SCHEMA, write_evaluations
from demand_forecasting.platform.context import build_context

INSTANT = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)
ZONE = "Australia/Sydney"  # UTC+11 on that day: the date differs too


def test_audit_and_evaluation_rows_keep_the_instant_in_a_non_utc_session(
    spark: Any, tmp_path: Path
) -> None:
    ctx = build_context(
        "dev", "main", "demand_forecasting", state_dir=tmp_path, clock=lambda: INSTANT
    )
    event = AuditEvent(
        segment="tasmania__food_retailing",
        model_name="main.demand_forecasting.demand_tasmania__food_retailing",
        action=PROMOTE,
        from_version=None,
        to_version="1",
        run_id="r1",
        actor="tester",
        reason="test",
        model_artifact_hash=None,
        target="dev",
    )
    struct = _parse_datatype_string(EVALUATION_SCHEMA)
    assert isinstance(struct, StructType)
    evaluation: dict[str, object] = dict.fromkeys(struct.fieldNames())
    evaluation.update(
        evaluation_id="e1",
        evaluated_at=INSTANT,
        segment="tasmania__food_retailing",
        candidate_version="1",
        data_version=3,
        candidate_mase=0.8,
        passed=True,
    )
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", ZONE)
    try:
        write_audit(ctx, [event])
        write_evaluations(ctx, [evaluation])
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)

    epoch = int(INSTANT.timestamp())
    audit = ctx.tables.read(ctx.table(names.AUDIT)).selectExpr("CAST(at AS LONG)", "action")
    assert [tuple(r) for r in audit.collect()] == [(epoch, PROMOTE)]
    evaluations = (
        ctx.tables.read(ctx.table(names.EVALUATIONS))
        .selectExpr("CAST(evaluated_at AS LONG)", "candidate_mase", "champion_mase", "passed")
        .collect()
    )
    assert [tuple(r) for r in evaluations] == [(epoch, 0.8, None, True)]
