"""Approvals over several months: what awaits approval, and a refusal that says why.

Months of a prod-like run leave many reasons a named segment has no challenger awaiting
approval: a typo (or another schema), a version already approved, a newest candidate refused
by validation or rolled back, a rerun of an approval killed before its audit row. Each
refusal must name that, not send the approver to "run the deploy task first". And a newer
challenger supersedes an older one left awaiting approval, so one version per segment awaits.

Real Delta tables and the real sqlite MLflow registry; versions are registered without
training (approve moves aliases and never loads a model), tagged as validate would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demand_forecasting.models import approve, deploy, rollback, validate
from demand_forecasting.models.registry import (
    AWAITING_APPROVAL,
    CHALLENGER,
    DEPLOYMENT_STATUS,
    SUPERSEDED,
    VALIDATION_REASONS,
    VALIDATION_STATUS,
    SegmentRegistry,
)
from demand_forecasting.models.validate import CHALLENGERS_KEY
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.platform.task_values import LocalTaskValues
from models_support import history, write_gold

PREFIX = "demand"
SEGMENTS = ["tasmania__food_retailing", "tasmania__household_goods_retailing"]


class Killed(BaseException):
    """The process dies here (a SIGKILL runs no ``finally`` that would still write)."""


@pytest.fixture(scope="module")
def ctx(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    context = build_context(
        "dev", "main", "demand_forecasting", state_dir=tmp_path_factory.mktemp("approvals")
    )
    context.task_values = LocalTaskValues()
    write_gold(context, history(SEGMENTS, until="2015-12-01", since="2013-01-01"))
    return context


def registry(ctx: RunContext) -> SegmentRegistry:
    return SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, PREFIX)


def register(ctx: RunContext, segment: str, tmp_path: Path, *, passed: bool = True) -> str:
    """A new version, tagged as validation tags it; a passing one becomes the challenger
    as validation makes it."""
    reg = registry(ctx)
    name = reg.ensure_model(segment)
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    version = str(reg.client.create_model_version(name, source=str(source)).version)
    reason = "MASE 0.9 beats seasonal naive 1.1" if passed else "MASE 1.2 does not beat 1.1"
    reg.tag(
        segment,
        version,
        {VALIDATION_STATUS: "passed" if passed else "refused", VALIDATION_REASONS: reason},
    )
    if passed:
        validate.make_challenger(reg, segment, version)
    return version


def mark_awaiting(ctx: RunContext, segment: str, job_run_id: str) -> None:
    """The deploy task of a prod month (require_approval true) after validation."""
    values = ctx.task_values
    assert isinstance(values, LocalTaskValues)
    ctx.handover.publish("validate_models", {CHALLENGERS_KEY: {segment: "?"}})
    with values.running("deploy"):
        deploy.run(ctx, deploy.DeployConfig(None, PREFIX, True, job_run_id=job_run_id))


def approve_job(ctx: RunContext, *segments: str) -> dict[str, str]:
    return approve.run(
        ctx, approve.ApprovalConfig(segments, "CAB-9", "lead@contoso.com", PREFIX, "900")
    )


def test_each_named_segment_without_anything_awaiting_says_why(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    food, household = SEGMENTS
    register(ctx, food, tmp_path)
    mark_awaiting(ctx, food, "1")
    assert approve_job(ctx, food) == {food: "1"}
    register(ctx, household, tmp_path)
    mark_awaiting(ctx, household, "2")
    approve_job(ctx, household)

    # Approved already: nothing awaits, and the deploy task has run.
    with pytest.raises(LookupError) as already:
        approve_job(ctx, food)
    assert f"{food}: its newest version v1 is already the champion" in str(already.value)
    assert "run the deploy task first" not in str(already.value)

    # A typo: no such model; the segments that exist are listed.
    with pytest.raises(LookupError) as typo:
        approve_job(ctx, "tasmania__food_retailng")
    message = str(typo.value)
    assert "no registered model main.demand_forecasting.demand_tasmania__food_retailng" in message
    assert f"Segments of main.demand_forecasting.gold_features: {food}, {household}" in message

    # The newest candidate was refused by validation: its reasons, and the champion kept.
    register(ctx, food, tmp_path, passed=False)
    with pytest.raises(LookupError) as refused:
        approve_job(ctx, food)
    assert (
        f"{food}: its newest version v2 was refused by validation (MASE 1.2 does not beat "
        "1.1); the champion is v1"
    ) in str(refused.value)

    # The newest version was approved, then rolled back.
    register(ctx, household, tmp_path)
    mark_awaiting(ctx, household, "3")
    approve_job(ctx, household)
    rollback.rollback(ctx, PREFIX, household, None, "INC-1", actor="ops")
    with pytest.raises(LookupError) as rolled_back:
        approve_job(ctx, household)
    assert f"{household}: its newest version v2 was rolled back" in str(rolled_back.value)
    assert f"rollback {household} --to 2" in str(rolled_back.value)

    # A challenger deploy has not marked (it ran without require_approval, or not yet).
    register(ctx, food, tmp_path)
    with pytest.raises(LookupError) as unmarked:
        approve_job(ctx, food)
    assert f"{food}: challenger v3 is not marked awaiting approval" in str(unmarked.value)


def test_a_rerun_of_a_killed_approval_says_the_reconciliation_recorded_it(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "killed_approval"
    version = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "10")

    def killed(*_: Any, **__: Any) -> None:
        raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(approve, "write_audit", killed)
        with pytest.raises(Killed):
            approve_job(ctx, segment)

    with pytest.raises(LookupError) as rerun:
        approve_job(ctx, segment)
    message = str(rerun.value)
    assert f"{segment}: its newest version v{version} is already the champion" in message
    assert (
        f"Audit reconciliation first recorded 1 champion change(s) that had no audit row "
        f"(e.g. an approval killed before writing it): {segment} none -> v{version} "
        "(by lead@contoso.com)"
    ) in message


def test_a_newer_challenger_supersedes_the_version_awaiting_approval(
    ctx: RunContext, tmp_path: Path
) -> None:
    """Month 1's challenger is never approved; month 2's passes validation and takes the
    alias: the registry must not show two versions awaiting approval."""
    segment = "piled_up"
    reg = registry(ctx)
    first = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "20")
    second = register(ctx, segment, tmp_path)

    assert reg.version(segment, first).tags[DEPLOYMENT_STATUS] == SUPERSEDED
    mark_awaiting(ctx, segment, "21")
    statuses = {
        str(v.version): (v.tags or {}).get(DEPLOYMENT_STATUS) for v in reg.versions(segment)
    }
    assert statuses == {first: SUPERSEDED, second: AWAITING_APPROVAL}
    assert approve_job(ctx, segment) == {segment: second}

    # A challenger that awaited nothing (deploy has not run) is left as it is.
    third = register(ctx, segment, tmp_path)
    fourth = register(ctx, segment, tmp_path)
    assert (reg.version(segment, third).tags or {}).get(DEPLOYMENT_STATUS) is None
    assert str(reg.alias(segment, CHALLENGER).version) == fourth  # type: ignore[union-attr]


def test_the_report_lists_what_awaits_approval_with_the_gates_figures(
    ctx: RunContext, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from demand_forecasting.monitoring.monitor import awaiting_approval
    from demand_forecasting.monitoring.report import approval_section

    segment = "report_awaiting"
    first = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "30")
    second = register(ctx, segment, tmp_path)  # next month: supersedes the first
    mark_awaiting(ctx, segment, "31")
    columns = [c.split()[0] for c in validate.EVALUATION_SCHEMA.split(", ")]
    rows = [
        {
            **dict.fromkeys(columns),
            "evaluation_id": f"e{version}",
            "evaluated_at": datetime(2016, int(version), 3, tzinfo=timezone.utc),
            "segment": segment,
            "candidate_version": version,
            "candidate_mase": mase,
            "naive_mase": 1.1,
            "data_version": int(version),
        }
        for version, mase in ((first, 0.95), (second, 0.82))
    ]
    validate.write_evaluations(ctx, rows)

    awaiting = awaiting_approval(ctx)
    mine = awaiting[awaiting["segment"] == segment]
    # Only the newest challenger awaits (the superseded one is not approvable), with its
    # own evaluation; a segment approved since (the other tests') is not listed.
    assert mine[["version", "candidate_mase", "naive_mase"]].values.tolist() == [
        [second, 0.82, 1.1]
    ]
    assert mine["champion_mase"].isna().all()
    assert set(awaiting["segment"]) <= {segment, "piled_up"} | set(SEGMENTS)
    text = "\n".join(approval_section(mine))
    assert "## Awaiting approval (1)" in text
    assert f"| {segment} | {second} |" in text and "| 0.820 |" in text

    approve_job(ctx, segment)
    assert segment not in set(awaiting_approval(ctx)["segment"])
    assert approval_section(awaiting_approval(ctx).iloc[0:0]) == []
