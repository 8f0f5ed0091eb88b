"""A champion change whose audit row was lost (the process killed between moving the alias
and appending the row) is reconciled into the trail, once, also when two jobs reconcile it
at the same time; a killed rollback's missing ``rolled_back`` tag is set on the way.

Real Delta tables and the real sqlite MLflow registry; the versions are registered without
training (deploy, approve and rollback move aliases and never load a model). A kill is the
real task run up to its audit write (or a rollback's up to its ``rolled_back`` tag), which
dies there as a SIGKILL would: the aliases moved, no row was appended.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from demand_forecasting import names
from demand_forecasting.models import approve, audit, deploy
from demand_forecasting.models import rollback as rollback_task
from demand_forecasting.models.audit import (
    RECONCILED,
    UNKNOWN_ACTOR,
    AuditEvent,
    current_actor,
    intent_tag,
    reconcile,
)
from demand_forecasting.models.registry import (
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_STATUS,
    PREVIOUS_CHAMPION,
    PROMOTION_INTENT,
    ROLLED_BACK,
    SegmentRegistry,
)
from demand_forecasting.models.validate import CHALLENGERS_KEY
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.platform.task_values import LocalTaskValues
from registry_support import OverlapCountingClient

PREFIX = "demand"


class Killed(BaseException):
    """The process dies here (a SIGKILL runs no ``finally`` that would still write)."""


@pytest.fixture(scope="module")
def ctx(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    context = build_context(
        "dev", "main", "demand_forecasting", state_dir=tmp_path_factory.mktemp("reconcile")
    )
    context.task_values = LocalTaskValues()
    return context


def registry(ctx: RunContext) -> SegmentRegistry:
    return SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, PREFIX)


def register(ctx: RunContext, segment: str, tmp_path: Path, *, challenger: bool = True) -> str:
    """A new version of the segment's model (with a run id and an artifact hash, as the train
    task tags them), made the challenger as validation would."""
    reg = registry(ctx)
    name = reg.ensure_model(segment)
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    version: Any = reg.client.create_model_version(
        name,
        source=str(source),
        tags={"artifact_hash": f"hash-{segment}-{len(reg.versions(segment)) + 1}"},
    )
    if challenger:
        reg.set_alias(segment, CHALLENGER, str(version.version))
    return str(version.version)


def run_deploy(
    ctx: RunContext, segments: list[str], job_run_id: str, approval: bool = False
) -> Any:
    """The deploy task as the monthly job runs it, after validate published its challengers."""
    values = ctx.task_values
    assert isinstance(values, LocalTaskValues)
    ctx.handover.publish("validate_models", {CHALLENGERS_KEY: dict.fromkeys(segments, "?")})
    with values.running("deploy"):
        return deploy.run(ctx, deploy.DeployConfig(None, PREFIX, approval, job_run_id=job_run_id))


def champion_then_challenger(ctx: RunContext, segment: str, tmp_path: Path, job_run: str) -> str:
    """v1 registered and promoted by deploy run ``job_run``; v2 registered as the
    challenger. Returns v2."""
    register(ctx, segment, tmp_path)
    run_deploy(ctx, [segment], job_run)
    return register(ctx, segment, tmp_path)


def kill_at_audit_write(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    """The task's own audit write never happens (reconciliation writes through the audit
    module and is not affected)."""

    def killed(*_: Any, **__: Any) -> None:
        raise Killed()

    monkeypatch.setattr(module, "write_audit", killed)


def trail(ctx: RunContext, segment: str) -> pd.DataFrame:
    """The segment's audit rows, oldest first."""
    rows = ctx.tables.read(ctx.table(names.AUDIT)).toPandas()
    return rows[rows["segment"] == segment].sort_values("at", ignore_index=True)


def champion_of(ctx: RunContext, segment: str) -> str:
    found = registry(ctx).alias(segment, CHAMPION)
    assert found is not None
    return str(found.version)


def test_a_deploy_killed_before_its_audit_row_is_reconciled_by_the_next_deploy_first(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "killed_deploy"
    v2 = champion_then_challenger(ctx, segment, tmp_path, "100")
    with monkeypatch.context() as patch:
        kill_at_audit_write(patch, deploy)
        with pytest.raises(Killed):
            run_deploy(ctx, [segment], "101")
    # What the kill left: v2 is champion, the trail still ends at v1.
    assert champion_of(ctx, segment) == v2
    assert trail(ctx, segment)["to_version"].tolist() == ["1"]

    v3 = register(ctx, segment, tmp_path)
    summary = run_deploy(ctx, [segment], "102")

    assert summary.promoted == {segment: v3} and summary.reconciled == [segment]
    # Once its row is written, a promotion's intent tag is removed: a version carries no more
    # tags than before intents existed (Unity Catalog limits tags per version).
    assert PROMOTION_INTENT not in (registry(ctx).version(segment, v3).tags or {})
    rows = trail(ctx, segment)
    assert rows[["action", "from_version", "to_version", "job_run_id"]].values.tolist() == [
        ["promote", None, "1", "100"],
        [RECONCILED, "1", v2, "101"],  # before the new promotion, whose from is v2
        ["promote", v2, v3, "102"],
    ]
    rebuilt = rows.iloc[1]
    version = registry(ctx).version(segment, v2)
    # Who and why come from the intent tag the killed deploy set before moving the alias.
    assert rebuilt["actor"] == current_actor(ctx)
    assert rebuilt["run_id"] == version.run_id
    assert rebuilt["model_artifact_hash"] == f"hash-{segment}-2"
    assert rebuilt["reason"].startswith("audit reconciliation: champion v2 had no audit row")
    assert "promote by" in rebuilt["reason"] and "promotion_intent tag" in rebuilt["reason"]
    assert "original reason: passed validation" in rebuilt["reason"]
    assert "unknown: when exactly the alias moved" in rebuilt["reason"]
    assert "recorded by" in rebuilt["reason"] and "in job run 102" in rebuilt["reason"]


def test_a_second_reconciliation_and_a_rerun_write_nothing(ctx: RunContext) -> None:
    segment = "killed_deploy"
    before = len(trail(ctx, segment))
    reg = registry(ctx)

    assert reconcile(ctx, reg, reg.segments_with([segment], CHAMPION)) == []
    summary = run_deploy(ctx, [segment], "103")  # no challenger left: nothing to do

    assert summary.reconciled == [] and summary.promoted == {}
    assert len(trail(ctx, segment)) == before


def test_a_champion_moved_without_intent_is_reconciled_as_unknown_once(
    ctx: RunContext, tmp_path: Path
) -> None:
    segment = "hand_moved"
    register(ctx, segment, tmp_path)
    run_deploy(ctx, [segment], "200")
    reg = registry(ctx)
    # Someone moves the alias in the registry UI: no intent, no audit row.
    v2 = register(ctx, segment, tmp_path, challenger=False)
    reg.set_alias(segment, CHAMPION, v2)
    loaded = reg.segments_with([segment], CHAMPION)

    written = reconcile(ctx, reg, loaded, recorder="checker", job_run_id="201")

    assert [(e.action, e.from_version, e.to_version) for e in written] == [(RECONCILED, "1", v2)]
    event = written[0]
    assert (event.actor, event.job_run_id) == (UNKNOWN_ACTOR, None)
    assert event.model_artifact_hash == f"hash-{segment}-2"
    assert "unknown: who changed the champion, when and why" in event.reason
    assert "recorded by checker in job run 201" in event.reason
    assert reconcile(ctx, reg, reg.segments_with([segment], CHAMPION)) == []

    # And back to v1 by hand. v1 still carries an intent from its own first promotion (as
    # when removing it after the audit row failed): audited since, so stale, not used.
    first = trail(ctx, segment).iloc[0]
    stale = intent_tag(first["at"].to_pydatetime(), "promote", "someone", "old", "200", None)
    reg.tag(segment, "1", {PROMOTION_INTENT: stale})
    reg.set_alias(segment, CHAMPION, "1")
    assert json.loads(reg.version(segment, "1").tags[PROMOTION_INTENT])["from_version"] is None
    back = reconcile(ctx, reg, reg.segments_with([segment], CHAMPION), recorder="checker")
    assert [(e.from_version, e.to_version, e.actor) for e in back] == [(v2, "1", UNKNOWN_ACTOR)]
    assert len(trail(ctx, segment)) == 3


def test_a_rerun_of_a_killed_rollback_is_refused_but_reconciles_first(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "killed_rollback"
    v2 = champion_then_challenger(ctx, segment, tmp_path, "300")
    run_deploy(ctx, [segment], "301")
    job = rollback_task.RollbackConfig(
        segment, "1", "INC-9 bad forecasts", "oncall@x", PREFIX, "302"
    )
    with monkeypatch.context() as patch:
        kill_at_audit_write(patch, rollback_task)
        with pytest.raises(Killed):
            rollback_task.run(ctx, job)
    assert champion_of(ctx, segment) == "1"

    rerun = rollback_task.RollbackConfig(segment, "1", "INC-9 retry", "oncall@x", PREFIX, "303")
    with pytest.raises(rollback_task.RollbackError, match="already is the champion"):
        rollback_task.run(ctx, rerun)

    last = trail(ctx, segment).iloc[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == (RECONCILED, v2, "1")
    assert (last["actor"], last["job_run_id"]) == ("oncall@x", "302")
    assert "rollback by oncall@x" in last["reason"]
    assert "original reason: INC-9 bad forecasts" in last["reason"]
    assert "recorded by oncall@x in job run 303" in last["reason"]


def killed_rollback(
    ctx: RunContext, segment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """v1 then v2 promoted; a rollback to v1 dies just after moving ``champion``, before it
    tags v2 rolled back (and so before its audit row). Returns v2."""
    v2 = champion_then_challenger(ctx, segment, tmp_path, "500")
    run_deploy(ctx, [segment], "501")
    tag = SegmentRegistry.tag

    def tag_or_die(self: SegmentRegistry, seg: str, version: str, tags: dict[str, str]) -> None:
        if tags.get(DEPLOYMENT_STATUS) == ROLLED_BACK:
            raise Killed()
        tag(self, seg, version, tags)

    job = rollback_task.RollbackConfig(segment, None, "INC-12 bias", "oncall@x", PREFIX, "502")
    with monkeypatch.context() as patch:
        patch.setattr(SegmentRegistry, "tag", tag_or_die)
        with pytest.raises(Killed):
            rollback_task.run(ctx, job)
    # What the kill left: v1 champion with the rollback's intent, v2 not tagged rolled back.
    reg = registry(ctx)
    assert champion_of(ctx, segment) == "1"
    assert json.loads(reg.version(segment, "1").tags[PROMOTION_INTENT])["action"] == "rollback"
    assert reg.version(segment, v2).tags[DEPLOYMENT_STATUS] == PREVIOUS_CHAMPION
    assert trail(ctx, segment)["to_version"].tolist() == ["1", v2]
    return v2


def assert_rollback_completed(ctx: RunContext, segment: str, v2: str) -> None:
    """The registry and the trail as a completed rollback of v2 to v1 leaves them (its row
    reconstructed), and a further reconciliation changes nothing."""
    reg = registry(ctx)
    assert champion_of(ctx, segment) == "1"
    previous = reg.alias(segment, PREVIOUS_CHAMPION)
    assert previous is not None and str(previous.version) == v2
    assert reg.version(segment, v2).tags[DEPLOYMENT_STATUS] == ROLLED_BACK
    assert PROMOTION_INTENT not in reg.version(segment, "1").tags
    rows = trail(ctx, segment)
    assert rows[
        ["action", "from_version", "to_version", "actor", "job_run_id"]
    ].values.tolist() == [
        ["promote", None, "1", current_actor(ctx), "500"],
        ["promote", "1", v2, current_actor(ctx), "501"],
        [RECONCILED, v2, "1", "oncall@x", "502"],
    ]
    assert "rollback by oncall@x" in rows.iloc[-1]["reason"]
    assert f"v{v2} tagged deployment_status=rolled_back now" in rows.iloc[-1]["reason"]
    assert reconcile(ctx, reg, reg.segments_with([segment], CHAMPION)) == []
    assert len(trail(ctx, segment)) == 3


def test_a_rollback_killed_before_its_rolled_back_tag_is_completed_by_its_rerun(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "rollback_killed_before_tag"
    v2 = killed_rollback(ctx, segment, tmp_path, monkeypatch)

    rerun = rollback_task.RollbackConfig(segment, "1", "INC-12 retry", "oncall@x", PREFIX, "503")
    with pytest.raises(rollback_task.RollbackError, match="already is the champion"):
        rollback_task.run(ctx, rerun)

    assert_rollback_completed(ctx, segment, v2)


@pytest.mark.parametrize("scored_first", [False, True])
def test_a_rerun_of_a_killed_rollback_with_its_own_parameters_does_not_undo_it(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scored_first: bool
) -> None:
    # The operator reruns the job as it was started: no to_version (the previous champion),
    # which is now v2, the version the killed rollback replaced.
    segment = f"rollback_killed_rerun_as_started_{scored_first}"
    v2 = killed_rollback(ctx, segment, tmp_path, monkeypatch)
    if scored_first:  # a monthly run's score reconciled the gap before the rerun
        reg = registry(ctx)
        assert len(reconcile(ctx, reg, reg.segments_with([segment], CHAMPION))) == 1

    rerun = rollback_task.RollbackConfig(segment, None, "INC-12 bias", "oncall@x", PREFIX, "505")
    with pytest.raises(rollback_task.RollbackError, match=f"version {v2} was rolled back"):
        rollback_task.run(ctx, rerun)

    assert_rollback_completed(ctx, segment, v2)


def test_a_rerun_month_after_a_rollback_killed_before_its_tag_does_not_promote_it_again(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "rollback_killed_then_month_rerun"
    v2 = killed_rollback(ctx, segment, tmp_path, monkeypatch)
    # The rerun month's validation reuses v2 as its candidate and, seeing no rolled_back
    # tag, makes it the challenger again; deploy reconciles before it promotes anything.
    registry(ctx).set_alias(segment, CHALLENGER, v2)

    summary = run_deploy(ctx, [segment], "504")

    assert summary.promoted == {} and summary.reconciled == [segment]
    assert f"version {v2} was rolled back" in summary.unchanged[segment]
    assert registry(ctx).alias(segment, CHALLENGER) is None
    assert_rollback_completed(ctx, segment, v2)


def kill_at_previous_champion(patch: pytest.MonkeyPatch) -> None:
    """The process dies as it is about to move ``previous_champion``."""
    set_alias = SegmentRegistry.set_alias

    def set_or_die(self: SegmentRegistry, seg: str, alias: str, version: str) -> None:
        if alias == PREVIOUS_CHAMPION:
            raise Killed()
        set_alias(self, seg, alias, version)

    patch.setattr(SegmentRegistry, "set_alias", set_or_die)


def test_a_deploy_killed_between_its_alias_moves_is_finished_by_the_next_reconciliation(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "deploy_killed_between_aliases"
    v2 = champion_then_challenger(ctx, segment, tmp_path, "700")
    with monkeypatch.context() as patch:
        kill_at_previous_champion(patch)
        with pytest.raises(Killed):
            run_deploy(ctx, [segment], "701")
    # champion moves first: the kill left a gap in the trail, not two aliases on v1.
    assert champion_of(ctx, segment) == v2
    assert registry(ctx).alias(segment, PREVIOUS_CHAMPION) is None

    reg = registry(ctx)  # as score reconciles every champion
    [event] = reconcile(ctx, reg, reg.segments_with([segment], CHAMPION))

    assert (event.action, event.from_version, event.to_version) == (RECONCILED, "1", v2)
    assert "previous_champion set to v1 now (was unset: the promote was killed" in event.reason
    previous = reg.alias(segment, PREVIOUS_CHAMPION)
    assert previous is not None and str(previous.version) == "1"
    assert reg.version(segment, "1").tags[DEPLOYMENT_STATUS] == PREVIOUS_CHAMPION
    assert reg.version(segment, v2).tags[DEPLOYMENT_STATUS] == CHAMPION
    assert PROMOTION_INTENT not in reg.version(segment, v2).tags
    assert reg.alias(segment, CHALLENGER) is None
    # The one-command rollback restores what the killed deploy replaced.
    job = rollback_task.RollbackConfig(segment, None, "INC-20", "oncall@x", PREFIX, "702")
    assert rollback_task.run(ctx, job) == "1"
    assert trail(ctx, segment)[["action", "from_version", "to_version"]].values.tolist() == [
        ["promote", None, "1"],
        [RECONCILED, "1", v2],
        ["rollback", v2, "1"],
    ]


def test_a_rollback_killed_between_its_alias_moves_is_completed_by_its_rerun(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "rollback_killed_between_aliases"
    v2 = champion_then_challenger(ctx, segment, tmp_path, "710")
    run_deploy(ctx, [segment], "711")
    job = rollback_task.RollbackConfig(segment, None, "INC-21 bias", "oncall@x", PREFIX, "712")
    with monkeypatch.context() as patch:
        kill_at_previous_champion(patch)
        with pytest.raises(Killed):
            rollback_task.run(ctx, job)
    assert champion_of(ctx, segment) == "1"

    # Rerun as it was started: reconciliation finishes the rollback, which then is refused
    # (it would undo itself); the target was never left as both champion and rollback target.
    rerun = rollback_task.RollbackConfig(segment, None, "INC-21 bias", "oncall@x", PREFIX, "713")
    with pytest.raises(rollback_task.RollbackError, match=f"version {v2} was rolled back"):
        rollback_task.run(ctx, rerun)

    reg = registry(ctx)
    previous = reg.alias(segment, PREVIOUS_CHAMPION)
    assert previous is not None and str(previous.version) == v2
    assert reg.version(segment, v2).tags[DEPLOYMENT_STATUS] == ROLLED_BACK
    assert reg.version(segment, "1").tags[DEPLOYMENT_STATUS] == CHAMPION
    last = trail(ctx, segment).iloc[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == (RECONCILED, v2, "1")
    assert "previous_champion set to v2 now (was v1: the rollback was killed" in last["reason"]


def hand_moved_gap(ctx: RunContext, segment: str, tmp_path: Path) -> str:
    """v1 promoted and audited, then v2 made champion by hand: a gap. Returns v2."""
    register(ctx, segment, tmp_path)
    run_deploy(ctx, [segment], "600")
    v2 = register(ctx, segment, tmp_path, challenger=False)
    registry(ctx).set_alias(segment, CHAMPION, v2)
    return v2


def test_a_reconciliation_that_read_the_trail_before_another_wrote_the_row_adds_none(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "reconciled_twice"
    v2 = hand_moved_gap(ctx, segment, tmp_path)
    reg = registry(ctx)
    # Both jobs read the trail (one champion row, v1) before either writes.
    read_by_both = audit.audited_champions(ctx, [reg.name(segment)])

    first = reconcile(ctx, reg, reg.segments_with([segment], CHAMPION), recorder="job-a")
    with monkeypatch.context() as patch:
        patch.setattr(audit, "audited_champions", lambda *_: read_by_both)
        second = reconcile(ctx, reg, reg.segments_with([segment], CHAMPION), recorder="job-b")

    rows = trail(ctx, segment)
    assert rows[["action", "to_version", "reason"]].values.tolist()[1:] == [
        [RECONCILED, v2, first[0].reason]  # job-a's row only
    ]
    assert [(e.from_version, e.to_version) for e in second] == [("1", v2)]
    assert second[0].audit_id == first[0].audit_id  # the same gap, the same id


def test_two_reconciliations_of_the_same_gap_at_once_write_one_row(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "reconciled_at_once"
    v2 = hand_moved_gap(ctx, segment, tmp_path)
    reg = registry(ctx)
    read_trail = audit.audited_champions
    both_read = threading.Barrier(2, timeout=60)

    def read_then_wait(*args: Any) -> Any:
        found = read_trail(*args)
        both_read.wait()  # neither writes before both read the trail without the row
        return found

    monkeypatch.setattr(audit, "audited_champions", read_then_wait)
    written: dict[str, list[AuditEvent]] = {}
    failed: list[BaseException] = []

    def job(name: str) -> None:
        try:
            written[name] = reconcile(
                ctx, reg, reg.segments_with([segment], CHAMPION), recorder=name
            )
        except BaseException as exc:  # reported below, in the test's thread
            failed.append(exc)

    threads = [threading.Thread(target=job, args=(name,)) for name in ("job-a", "job-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failed == []
    assert [len(events) for events in written.values()] == [1, 1]  # both found the gap
    rows = trail(ctx, segment)
    assert rows[["action", "from_version", "to_version"]].values.tolist() == [
        ["promote", None, "1"],
        [RECONCILED, "1", v2],
    ]


def test_a_rerun_of_a_killed_approval_finds_nothing_awaiting_but_reconciles_first(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = "killed_approval"
    v2 = champion_then_challenger(ctx, segment, tmp_path, "400")
    assert run_deploy(ctx, [segment], "401", approval=True).awaiting == {segment: v2}
    job = approve.ApprovalConfig((segment,), "CAB-7", "lead@x", PREFIX, "402")
    with monkeypatch.context() as patch:
        kill_at_audit_write(patch, approve)
        with pytest.raises(Killed):
            approve.run(ctx, job)
    assert champion_of(ctx, segment) == v2

    with pytest.raises(LookupError, match="no challenger awaiting approval"):
        approve.run(ctx, approve.ApprovalConfig((segment,), "CAB-7", "lead@x", PREFIX, "403"))

    rows = trail(ctx, segment)
    assert rows["action"].tolist() == ["promote", "awaiting_approval", RECONCILED]
    last = rows.iloc[-1]
    assert (last["from_version"], last["to_version"], last["actor"]) == ("1", v2, "lead@x")
    assert last["job_run_id"] == "402" and "approve by lead@x" in last["reason"]


def test_the_intent_fits_a_unity_catalog_tag_value() -> None:
    from datetime import datetime, timezone

    text = intent_tag(
        datetime(2026, 1, 31, tzinfo=timezone.utc), "approve", "a" * 200, 'é"' * 400, "1", "3"
    )
    intent = json.loads(text)
    assert len(text) <= 256
    assert intent["actor"] == "a" * 80 and intent["reason"].startswith("é")
    assert (intent["action"], intent["from_version"]) == ("approve", "3")


def test_deploy_and_approve_read_the_segments_several_at_a_time(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segments = [f"pooled_{i}" for i in range(6)]
    for segment in segments:
        register(ctx, segment, tmp_path)
    counting = OverlapCountingClient(
        tracking_uri=ctx.mlflow_store.tracking_uri, registry_uri=ctx.mlflow_store.registry_uri
    )
    monkeypatch.setattr(ctx, "mlflow", counting)

    deployed = run_deploy(ctx, segments, "600", approval=True)

    assert deployed.awaiting == dict.fromkeys(segments, "1")
    assert counting.peak > 1
    counting.peak = 0

    approved = approve.run(
        ctx, approve.ApprovalConfig(tuple(segments), "CAB-9", "lead@x", PREFIX, "601")
    )

    assert approved == dict.fromkeys(segments, "1")
    assert counting.peak > 1
    assert [champion_of(ctx, segment) for segment in segments] == ["1"] * len(segments)
    rows = ctx.tables.read(ctx.table(names.AUDIT)).toPandas()
    assert sorted(rows.loc[rows["job_run_id"] == "601", "segment"]) == segments
