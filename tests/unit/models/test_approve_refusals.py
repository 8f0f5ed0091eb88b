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
    CHAMPION,
    DEPLOYMENT_STATUS,
    LIFECYCLE_RULES_TAG,
    PREVIOUS_CHAMPION,
    RETIRED,
    ROLLED_BACK,
    SUPERSEDED,
    SegmentRegistry,
)
from demand_forecasting.models.validate import CHALLENGERS_KEY
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.platform.task_values import LocalTaskValues
from models_support import history, write_gold
from registry_support import register_validated

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
    return register_validated(ctx, segment, tmp_path, passed=passed, prefix=PREFIX)


def mark_awaiting(ctx: RunContext, segment: str, job_run_id: str) -> None:
    """The deploy task of a prod month (require_approval true) after validation."""
    deploy_task(ctx, segment, job_run_id, approval=True)


def deploy_task(
    ctx: RunContext, segment: str, job_run_id: str, *, approval: bool
) -> deploy.DeploySummary:
    """The deploy task of a month after validation published ``segment``'s challenger."""
    values = ctx.task_values
    assert isinstance(values, LocalTaskValues)
    ctx.handover.publish("validate_models", {CHALLENGERS_KEY: {segment: "?"}})
    with values.running("deploy"):
        return deploy.run(ctx, deploy.DeployConfig(None, PREFIX, approval, job_run_id=job_run_id))


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


def test_a_rollback_before_the_first_approval_says_to_approve_not_to_check_the_name(
    ctx: RunContext, tmp_path: Path
) -> None:
    """Prod's first months: the version reviewed was superseded, nothing is champion yet.
    A rollback has no champion to replace; its refusal must not blame the segment name."""
    segment = "never_approved"
    reviewed = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "40")
    newest = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "41")

    with pytest.raises(rollback.RollbackError) as refused:
        rollback.rollback(ctx, PREFIX, segment, reviewed, "CAB-7", actor="ops")
    message = str(refused.value)
    assert "has no champion yet, so there is nothing to roll back" in message
    assert f"approve {segment}={newest}" in message
    assert "check the segment name" not in message
    assert registry(ctx).alias(segment, CHAMPION) is None
    # A typo still says so.
    with pytest.raises(rollback.RollbackError, match=r"no registered model .*check the segment"):
        rollback.rollback(ctx, PREFIX, "never_aproved", None, "CAB-7", actor="ops")
    # What the refusal says to do works (and leaves nothing awaiting for the tests below).
    assert approve_job(ctx, f"{segment}={newest}") == {segment: newest}


def test_the_report_lists_what_awaits_approval_with_the_gates_figures(
    ctx: RunContext, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from demand_forecasting.monitoring.monitor import awaiting_approval
    from demand_forecasting.monitoring.report import approval_section, without_champion

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
    # The command that approves exactly the version shown, and why a segment without a
    # champion has no fallback forecasting it.
    assert f"`segments` set to `{segment}={second}`" in text
    assert f"`demand-forecasting approve {segment}={second} --reason ...`" in text
    assert without_champion([segment, "other"], mine) == [
        f"{segment} (v{second} awaits approval, so no fallback stands in)",
        "other",
    ]

    approve_job(ctx, segment)
    assert segment not in set(awaiting_approval(ctx)["segment"])
    assert approval_section(awaiting_approval(ctx).iloc[0:0]) == []


def audit_rows(ctx: RunContext, segment: str) -> list[list[str]]:
    """``[action, to_version, reason]`` of the segment's audit rows, oldest first."""
    from demand_forecasting import names

    rows = ctx.tables.read(ctx.table(names.AUDIT)).where(f"segment = '{segment}'").toPandas()
    return rows.sort_values("at")[["action", "to_version", "reason"]].values.tolist()


def test_a_pinned_approval_refuses_a_challenger_validated_after_the_review(
    ctx: RunContext, tmp_path: Path
) -> None:
    """The approver reviews v1 in the report; a monthly run validates v2 before they start
    the approve job. Approving ``segment=1`` must not promote v2."""
    from demand_forecasting.monitoring.monitor import awaiting_approval

    segment = "raced"
    reg = registry(ctx)
    reviewed = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "40")
    shown = awaiting_approval(ctx)
    assert shown.query("segment == @segment")["version"].tolist() == [reviewed]

    newer = register(ctx, segment, tmp_path)  # the next month's validation, then its deploy
    mark_awaiting(ctx, segment, "41")
    before = audit_rows(ctx, segment)

    with pytest.raises(LookupError) as raced:
        approve_job(ctx, f"{segment}={reviewed}")
    message = str(raced.value)
    assert (
        f"{segment} (reviewed v{reviewed}): its challenger awaiting approval is now v{newer}"
    ) in message
    assert f"v{reviewed} is {SUPERSEDED}" in message
    assert f"approve {segment}={newer}" in message  # what to do
    assert reg.alias(segment, "champion") is None, "the champion is unchanged"
    assert audit_rows(ctx, segment) == before, "a refused approval writes no row"

    # Pinned to what awaits now: promoted, and the audit row says which version was named.
    assert approve_job(ctx, f"{segment}={newer}") == {segment: newer}
    assert str(reg.alias(segment, "champion").version) == newer  # type: ignore[union-attr]
    action, version, reason = audit_rows(ctx, segment)[-1]
    assert (action, version) == ("approve", newer)
    assert reason == f"CAB-9; approved v{newer} as pinned"


def test_an_unpinned_approval_still_promotes_the_current_challenger_and_says_so(
    ctx: RunContext, tmp_path: Path
) -> None:
    segment = "unpinned"
    register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "50")
    newer = register(ctx, segment, tmp_path)
    mark_awaiting(ctx, segment, "51")
    assert approve_job(ctx, segment) == {segment: newer}
    reason = audit_rows(ctx, segment)[-1][2]
    assert reason == f"CAB-9; approved v{newer}, the challenger when approved (not pinned)"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a=", "'a=': the version after '=' must be a version number"),
        ("a=v7", "'a=v7': the version after '=' must be a version number"),
        ("=7", "'=7': no segment before '='"),
        ("a=1,a=2", "segment a is named twice (versions 1 and 2)"),
        ("reported:17-12", "'reported:17-12': write reported:YYYY-MM"),
        ("reported:2017-12,a=7", "approves a report's whole list: name it alone"),
    ],
)
def test_the_approve_job_refuses_a_malformed_pin_before_reading_anything(
    text: str, error: str
) -> None:
    import argparse

    args = argparse.Namespace(
        segments=text, reason="CAB-1", approver="a@b.c", model_prefix=PREFIX, job_run_id="1"
    )
    with pytest.raises(ValueError) as refused:
        approve.make_task_config(args)
    assert error in str(refused.value)
    assert "segments (all, reported:YYYY-MM, or a comma list of segment or segment=version)" in str(
        refused.value
    )


def test_the_approve_job_takes_pinned_and_unpinned_segments() -> None:
    import argparse

    args = argparse.Namespace(
        segments="a=7, b ,c=12", reason="r", approver="x", model_prefix=PREFIX, job_run_id="1"
    )
    config = approve.make_task_config(args)
    assert approve.pinned_versions(config.segments or ()) == {"a": "7", "b": None, "c": "12"}


def statuses(reg: SegmentRegistry, segment: str) -> dict[str, str | None]:
    return {str(v.version): (v.tags or {}).get(DEPLOYMENT_STATUS) for v in reg.versions(segment)}


def test_the_deployment_status_tag_follows_the_previous_champion_alias(
    ctx: RunContext, tmp_path: Path
) -> None:
    """The registry UI must show one previous champion per segment: a version that loses
    the alias is retired, one a person rolled back stays marked rolled back."""
    segment = "lifecycle"
    reg = registry(ctx)
    promoted = []
    for run in range(3):
        promoted.append(register(ctx, segment, tmp_path))
        deploy_task(ctx, segment, f"6{run}", approval=False)
    first, second, third = promoted
    assert statuses(reg, segment) == {first: RETIRED, second: PREVIOUS_CHAMPION, third: CHAMPION}

    rollback.rollback(ctx, PREFIX, segment, None, "INC-2", actor="ops")
    assert statuses(reg, segment) == {first: RETIRED, second: CHAMPION, third: ROLLED_BACK}
    fourth = register(ctx, segment, tmp_path)
    deploy_task(ctx, segment, "63", approval=False)
    assert statuses(reg, segment) == {
        first: RETIRED,
        second: PREVIOUS_CHAMPION,
        third: ROLLED_BACK,  # validation must keep skipping it
        fourth: CHAMPION,
    }


def test_the_next_deploy_retags_what_older_releases_left_stale_once(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions tagged by earlier releases: several 'previous champions', a version still
    'awaiting approval' although a newer one took its challenger alias."""
    segment = "stale_tags"
    reg = registry(ctx)
    for run in range(3):
        register(ctx, segment, tmp_path)
        deploy_task(ctx, segment, f"7{run}", approval=False)
    waiting = register(ctx, segment, tmp_path)
    # As earlier releases left them; their models carry no record of a tidy pass.
    reg.tag(segment, "1", {DEPLOYMENT_STATUS: PREVIOUS_CHAMPION})
    reg.tag(segment, waiting, {DEPLOYMENT_STATUS: AWAITING_APPROVAL})
    reg.delete_alias(segment, CHALLENGER)
    ctx.mlflow.delete_registered_model_tag(reg.name(segment), LIFECYCLE_RULES_TAG)
    assert list(statuses(reg, segment).values()).count(PREVIOUS_CHAMPION) == 2

    scans: list[str] = []
    real_iter = SegmentRegistry.iter_versions

    def counted(self: SegmentRegistry, name: str) -> Any:
        scans.append(name)
        return real_iter(self, name)

    monkeypatch.setattr(SegmentRegistry, "iter_versions", counted)
    newest = register(ctx, segment, tmp_path)
    summary = deploy_task(ctx, segment, "73", approval=True)
    assert scans == [segment], "deploy read the segment's versions once"
    assert statuses(reg, segment) == {
        "1": RETIRED,
        "2": PREVIOUS_CHAMPION,
        "3": CHAMPION,
        waiting: SUPERSEDED,
        newest: AWAITING_APPROVAL,
    }
    assert summary.retagged == {
        segment: [
            f"v1 {PREVIOUS_CHAMPION} -> {RETIRED}",
            f"v{waiting} {AWAITING_APPROVAL} -> {SUPERSEDED}",
        ]
    }

    # Once checked, a segment's versions are not read again by later deploys.
    scans.clear()
    deploy_task(ctx, segment, "74", approval=True)
    register(ctx, segment, tmp_path)
    assert deploy_task(ctx, segment, "75", approval=True).retagged == {}
    assert scans == []
