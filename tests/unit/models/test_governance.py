"""Train -> validate -> deploy on a tiny real gold table, then the governed changes.

One local state folder for the module (Delta tables and a sqlite MLflow registry, created
once: a fresh MLflow store costs seconds); the tests run in file order, each starting from
what the previous left (first run, rerun, a worse candidate, promotion + rollback, approval,
then a gold table with a broken segment).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from demand_forecasting import cli, names
from demand_forecasting.models import approve, deploy, train, validate
from demand_forecasting.models import rollback as rollback_task
from demand_forecasting.models.gate import GateRule
from demand_forecasting.models.recipe import Recipe
from demand_forecasting.models.registry import (
    AWAITING_APPROVAL,
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_STATUS,
    MAX_VERSION_TAGS,
    PREVIOUS_CHAMPION,
    PROMOTION_INTENT,
    TAG_VALUE_MAX,
    VERSION_TAGS,
    SegmentRegistry,
)
from demand_forecasting.models.rollback import RollbackError, rollback
from demand_forecasting.models.segment_data import SegmentSelectionError, read_history
from demand_forecasting.monitoring.champions import find_champions, recently_refused
from demand_forecasting.monitoring.telemetry import TaskRecorder
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.platform.handover import HandOver
from demand_forecasting.platform.task_values import LocalTaskValues
from models_support import history, write_gold

SEGMENTS = ["tasmania__food_retailing", "tasmania__household_goods_retailing"]
RECIPE = Recipe().with_overrides(xgb_params={"n_estimators": 40, "learning_rate": 0.15})
EXPERIMENT = "/Shared/demand_forecasting_tests"
#: A recipe that loses to seasonal naive (validation refuses it).
WORSE = Recipe(xgb_weight=1.0).with_overrides(
    xgb_params={"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}
)


@pytest.fixture(scope="module")
def ctx(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    context = build_context(
        "dev", "main", "demand_forecasting", state_dir=tmp_path_factory.mktemp("governance")
    )
    context.task_values = LocalTaskValues()
    write_gold(context, history(SEGMENTS, until="2016-12-01", since="2006-01-01"))
    return context


def registry(ctx: RunContext) -> SegmentRegistry:
    return SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, "demand")


def run_month(
    ctx: RunContext,
    recipe: Recipe = RECIPE,
    segments: tuple[str, ...] | None = None,
    tolerance: float = 0.02,
    approval: bool = False,
    prefix: str = "demand",
) -> dict[str, Any]:
    """The three tasks as the job chains them (task values passed along)."""
    values = ctx.task_values
    assert isinstance(values, LocalTaskValues)
    with values.running("train"), TaskRecorder("train", "dev") as train_recorder:
        trained = train.run(
            ctx,
            train.TrainConfig(
                segments, recipe, prefix, EXPERIMENT, git_commit="abc123", backtest_origins=2
            ),
        )
    with values.running("validate_models"), TaskRecorder("validate_models", "dev") as recorder:
        validated = validate.run(
            ctx, validate.ValidateConfig(segments, prefix, 2, GateRule(tolerance))
        )
    with values.running("deploy"):
        deployed = deploy.run(ctx, deploy.DeployConfig(segments, prefix, approval))
    return {
        "train": trained,
        "validate": validated,
        "deploy": deployed,
        "telemetry": {"train": train_recorder.record, "validate": recorder.record},
    }


def version_of(reg: SegmentRegistry, segment: str, alias: str) -> str | None:
    """The version behind an alias, as text (the sqlite registry returns ints)."""
    found = reg.alias(segment, alias)
    return str(found.version) if found is not None else None


def table(ctx: RunContext, name: str) -> pd.DataFrame:
    return ctx.tables.read(ctx.table(name)).toPandas()


def test_first_run_registers_validates_and_promotes_every_segment(ctx: RunContext) -> None:
    result = run_month(ctx)
    assert result["train"].candidates == dict.fromkeys(SEGMENTS, "1")
    assert result["deploy"].promoted == dict.fromkeys(SEGMENTS, "1")
    reg = registry(ctx)
    for segment in SEGMENTS:
        champion = reg.alias(segment, CHAMPION)
        assert champion is not None and str(champion.version) == "1"
        assert reg.alias(segment, CHALLENGER) is None
        tags = champion.tags
        assert set(VERSION_TAGS) <= set(tags)
        assert tags["training_table"] == ctx.table(names.FEATURES)
        assert tags["training_table_version"] == "0"
        assert tags["git_commit"] == "abc123" and tags["bundle_target"] == "dev"
        assert tags["validation_status"] == "passed"
        figures = json.loads(tags["validation_figures"])
        assert figures["data_version"] == 0 and figures["mase"] < figures["naive_mase"]
        # The version's source is its logged model (MLflow 3), and it names its run; the
        # logged model is filed under the run's experiment, with the store's artifacts.
        assert champion.source.startswith("models:/m-") and champion.run_id == tags["run_id"]
        logged = ctx.mlflow.get_logged_model(champion.source.removeprefix("models:/"))
        run_experiment = ctx.mlflow.get_run(champion.run_id).info.experiment_id
        assert logged.experiment_id == run_experiment
        assert logged.artifact_location.startswith(str(ctx.mlflow_store.artifact_root))
        assert (
            "PASSED validation" in ctx.mlflow.get_model_version(reg.name(segment), "1").description
        )

    evaluations = table(ctx, names.EVALUATIONS)
    assert sorted(evaluations["segment"]) == SEGMENTS
    assert evaluations["passed"].all()
    assert (evaluations["candidate_mase"] < evaluations["naive_mase"]).all()
    # No champion yet and train backtested on this data with this K: its figures are used.
    assert (result["validate"].backtests_reused, result["validate"].backtests_run) == (2, 0)
    for row in evaluations.itertuples():
        metrics = ctx.mlflow.get_run(row.candidate_run_id).data.metrics
        assert row.candidate_mase == pytest.approx(metrics["backtest_mase"])
        assert row.naive_mase == pytest.approx(metrics["backtest_naive_mase"])
        assert row.backtest_origins == 2
    audit = table(ctx, names.AUDIT)
    assert sorted(audit["segment"]) == SEGMENTS
    assert set(audit["action"]) == {"promote"} and audit["from_version"].isna().all()
    # Each segment's own work is measured, for its share of the tasks' cost.
    for record in result["telemetry"].values():
        assert record is not None and record.segment_seconds is not None
        assert sorted(record.segment_seconds) == SEGMENTS
        assert all(seconds > 0 for seconds in record.segment_seconds.values())
    assert audit["model_artifact_hash"].str.len().eq(64).all()


def test_training_runs_carry_plots_importance_lineage_and_a_loadable_model(ctx: RunContext) -> None:
    reg = registry(ctx)
    version = reg.alias(SEGMENTS[0], CHAMPION)
    assert version is not None
    run = ctx.mlflow.get_run(version.run_id)
    assert run.data.tags["mlflow.parentRunId"]
    # Datasets share the experiment: each run is tagged with its dataset and named by it.
    assert run.data.tags["dataset"] == "aus_retail"
    assert run.info.run_name == f"aus_retail/{SEGMENTS[0]}"
    parent = ctx.mlflow.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["dataset"] == "aus_retail"
    assert parent.info.run_name.startswith("train aus_retail ")
    assert run.data.metrics["backtest_mase"] > 0
    assert run.data.metrics["backtest_pairs"] > 0
    files = {f.path for f in ctx.mlflow.list_artifacts(version.run_id)}
    assert {"forecast_vs_actual.png", "feature_importance.json"} <= files
    # The run and its logged model carry the same parameters; the run its data hash.
    assert run.data.params["training_table"] == ctx.table(names.FEATURES)
    assert run.data.tags["data_hash"] == version.tags["data_hash"]
    logged = ctx.mlflow.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.params == run.data.params
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.source_type == "delta_table"
    assert ctx.table(names.FEATURES) in dataset.dataset.source
    model = mlflow.pyfunc.load_model(f"models:/{reg.name(SEGMENTS[0])}@champion")
    recent = history(SEGMENTS[:1], until="2016-12-01", since="2014-01-01")
    forecast = model.predict(
        recent[["series_id", "month", "y"]].assign(month=lambda f: pd.to_datetime(f["month"]))
    )
    assert forecast["horizon"].max() == 12
    assert forecast["forecast"].gt(0).all()


def test_rerunning_the_month_creates_no_new_version_row_or_champion(ctx: RunContext) -> None:
    evaluations, audit = len(table(ctx, names.EVALUATIONS)), len(table(ctx, names.AUDIT))
    result = run_month(ctx)
    assert result["train"].reused == dict.fromkeys(SEGMENTS, "1")
    assert result["deploy"].promoted == {}
    assert len(table(ctx, names.EVALUATIONS)) == evaluations
    assert len(table(ctx, names.AUDIT)) == audit
    for segment in SEGMENTS:
        assert [str(v.version) for v in registry(ctx).versions(segment)] == ["1"]


def test_after_a_train_that_published_nothing_validation_changes_nothing(
    ctx: RunContext,
) -> None:
    evaluations = len(table(ctx, names.EVALUATIONS))
    # A job run whose train failed before it handed candidates over.
    ctx.handover = HandOver(ctx.tables, ctx.table(names.HANDOVER), "8001", ctx.clock)
    config = validate.ValidateConfig(None, "demand", 2, GateRule(0.02), only_train_candidates=True)
    summary = validate.run(ctx, config)

    assert (summary.passed, summary.refused, summary.skipped) == ({}, {}, {})
    assert ctx.handover.read("validate_models", validate.CHALLENGERS_KEY) == {}
    assert len(table(ctx, names.EVALUATIONS)) == evaluations
    for segment in SEGMENTS:
        assert version_of(registry(ctx), segment, CHAMPION) == "1"
    parser = argparse.ArgumentParser()
    validate.add_arguments(parser)
    with pytest.raises(ValueError, match="--only-train-candidates 'yes': say true or false"):
        validate.make_config(
            parser.parse_args(["--only-train-candidates", "yes"], namespace=_job_options())
        )


def _job_options() -> argparse.Namespace:
    return argparse.Namespace(job_run_id=None)


def test_a_deliberately_worse_candidate_is_refused_and_the_champion_stays(ctx: RunContext) -> None:
    worse = Recipe(xgb_weight=1.0).with_overrides(
        xgb_params={"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}
    )
    segment = SEGMENTS[0]
    result = run_month(ctx, worse, segments=(segment,))
    assert result["train"].candidates == {segment: "2"}
    assert segment in result["validate"].refused
    # The champion's recipe differs from the candidate's: both are refitted in validation.
    assert (result["validate"].backtests_reused, result["validate"].backtests_run) == (0, 1)
    assert result["deploy"].promoted == {}
    reg = registry(ctx)
    assert version_of(reg, segment, CHAMPION) == "1"
    assert reg.alias(segment, CHALLENGER) is None
    assert reg.version(segment, "2").tags["validation_status"] == "refused"
    row = table(ctx, names.EVALUATIONS).query("candidate_version == '2'").iloc[0]
    assert not row["passed"] and "seasonal naive" in row["reasons"]
    assert row["champion_version"] == "1"


def test_promotion_then_rollback_is_audited(
    ctx: RunContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    segment = SEGMENTS[0]
    other = RECIPE.with_overrides(xgb_params={"random_state": 11})
    result = run_month(ctx, other, segments=(segment,), tolerance=0.5)
    assert result["deploy"].promoted == {segment: "3"}
    reg = registry(ctx)
    assert version_of(reg, segment, PREVIOUS_CHAMPION) == "1"
    # The month was scored by version 3 (one forecast row is enough to tell).
    ctx.tables.write(
        ctx.spark.createDataFrame(
            [(segment, date(2016, 12, 1), "3")],
            "segment string, run_month date, model_version string",
        ),
        ctx.table(names.FORECASTS),
    )

    # Through the rollback job's task, as on Databricks (empty to_version: the previous one).
    rolled = rollback_task.run(
        ctx,
        rollback_task.RollbackConfig(segment, None, "test rollback", "tester", "demand", "88"),
    )
    assert rolled == "1"
    # BI still reads version 3's forecasts: the command says so and what to do.
    assert f"forecasts of run month 2016-12 that segment {segment}'s version 3 made" in caplog.text
    assert "rerun the monthly job" in caplog.text
    assert version_of(reg, segment, CHAMPION) == "1"
    last = table(ctx, names.AUDIT).sort_values("at").iloc[-1]
    assert (last["action"], last["from_version"], last["to_version"], last["actor"]) == (
        "rollback",
        "3",
        "1",
        "tester",
    )
    assert (last["reason"], last["job_run_id"]) == ("test rollback", "88")
    with pytest.raises(RollbackError, match="already is the champion"):
        rollback(ctx, "demand", segment, "1", reason="again")


def test_rerunning_the_month_after_a_rollback_does_not_promote_the_rolled_back_version(
    ctx: RunContext,
) -> None:
    segment = SEGMENTS[0]
    other = RECIPE.with_overrides(xgb_params={"random_state": 11})
    audit_rows = len(table(ctx, names.AUDIT))

    # The same data, recipe and code as the run whose v3 was rolled back: train reuses v3.
    result = run_month(ctx, other, segments=(segment,), tolerance=0.5)

    assert result["train"].reused == {segment: "3"}
    assert "rolled back" in result["validate"].skipped[segment]
    assert result["deploy"].promoted == {}
    reg = registry(ctx)
    assert version_of(reg, segment, CHAMPION) == "1"
    assert reg.alias(segment, CHALLENGER) is None
    assert len(table(ctx, names.AUDIT)) == audit_rows


def test_approval_required_only_marks_until_approved(ctx: RunContext) -> None:
    segment = SEGMENTS[1]
    other = RECIPE.with_overrides(xgb_params={"random_state": 5})
    result = run_month(ctx, other, segments=(segment,), tolerance=0.5, approval=True)
    assert result["deploy"].awaiting == {segment: "2"}
    reg = registry(ctx)
    assert version_of(reg, segment, CHAMPION) == "1"
    # As the approve job does it: its task, with the job's parameters.
    job = approve.ApprovalConfig((segment,), "CAB-1", "lead@contoso.com", "demand", "77")
    assert approve.run(ctx, job) == {segment: "2"}
    assert version_of(reg, segment, CHAMPION) == "2"
    audit = table(ctx, names.AUDIT).query("segment == @segment")
    assert sorted(audit["action"]) == ["approve", "awaiting_approval", "promote"]
    approval = audit.query("action == 'approve'").iloc[0]
    assert (approval["actor"], approval["reason"], approval["job_run_id"]) == (
        "lead@contoso.com",
        "CAB-1; approved v2, the challenger when approved (not pinned)",
        "77",
    )


def test_approve_refuses_when_nothing_awaits_or_the_schema_has_no_models(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(ctx.state_dir))
    audit_rows = len(table(ctx, names.AUDIT))
    command = ["approve", "--all", "--catalog", "main", "--reason", "CAB-2"]

    assert cli.main([*command, "--schema", "demand_forecasting"]) == 1
    assert "no challenger awaits approval in main.demand_forecasting" in caplog.text
    assert "require_approval" in caplog.text
    caplog.clear()
    assert cli.main([*command, "--schema", "no_such_schema"]) == 1
    assert "approve refused: feature table main.no_such_schema.gold_features" in caplog.text
    assert "Traceback" not in caplog.text
    assert len(table(ctx, names.AUDIT)) == audit_rows


def test_a_deploy_failing_midway_audits_what_it_promoted_and_a_rerun_finishes(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = SEGMENTS  # deploy promotes in this (sorted) order
    other = RECIPE.with_overrides(xgb_params={"random_state": 7})
    values = ctx.task_values
    assert isinstance(values, LocalTaskValues)
    with values.running("train"):
        trained = train.run(
            ctx, train.TrainConfig(None, other, "demand", EXPERIMENT, backtest_origins=2)
        )
    with values.running("validate_models"):
        validated = validate.run(ctx, validate.ValidateConfig(None, "demand", 2, GateRule(0.5)))
    assert sorted(validated.passed) == SEGMENTS
    new = trained.candidates
    audited = set(table(ctx, names.AUDIT)["audit_id"])

    real_promote = deploy.promote

    def promote_failing_second(*args: Any, **kwargs: Any) -> Any:
        if args[2] == second:
            raise RuntimeError("registry unavailable")
        return real_promote(*args, **kwargs)

    monkeypatch.setattr(deploy, "promote", promote_failing_second)
    with values.running("deploy"), pytest.raises(RuntimeError, match="registry unavailable"):
        deploy.run(ctx, deploy.DeployConfig(None, "demand", False))
    reg = registry(ctx)
    assert version_of(reg, first, CHAMPION) == new[first]
    # The champion changed: its promotion is in the audit table although deploy failed.
    added = table(ctx, names.AUDIT).loc[lambda f: ~f["audit_id"].isin(audited)]
    assert added[["segment", "action", "to_version"]].values.tolist() == [
        [first, "promote", new[first]]
    ]

    monkeypatch.setattr(deploy, "promote", real_promote)
    with values.running("deploy"):
        rerun = deploy.run(ctx, deploy.DeployConfig(None, "demand", False))
    assert rerun.promoted == {second: new[second]}
    added = table(ctx, names.AUDIT).loc[lambda f: ~f["audit_id"].isin(audited)]
    assert sorted(added[["segment", "action", "to_version"]].values.tolist()) == [
        [first, "promote", new[first]],
        [second, "promote", new[second]],
    ]


def test_a_refused_segment_without_champion_gets_a_governed_seasonal_naive_champion(
    ctx: RunContext,
) -> None:
    # Another model prefix: the same real segment, but no champion yet.
    prefix, segment = "fallback", SEGMENTS[0]
    worse = WORSE
    result = run_month(ctx, worse, segments=(segment,), prefix=prefix)
    assert segment in result["validate"].refused
    assert result["validate"].fallbacks == {segment: "2"}
    assert result["deploy"].promoted == {segment: "2"}
    reg = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, prefix)
    champion = reg.alias(segment, CHAMPION)
    refused = reg.version(segment, "1")
    assert champion is not None and str(champion.version) == "2"
    assert refused.tags["validation_status"] == "refused"
    assert champion.tags["fallback"] == "seasonal_naive" and champion.tags["fallback_for"] == "1"
    assert champion.tags["validation_status"] == "fallback"
    for key in ("training_table", "training_table_version", "data_hash", "trained_until"):
        assert champion.tags[key] == refused.tags[key], key
    run = ctx.mlflow.get_run(champion.run_id)
    assert (
        run.data.tags["mlflow.parentRunId"]
        == ctx.mlflow.get_run(refused.run_id).data.tags["mlflow.parentRunId"]
    )
    assert run.inputs.dataset_inputs, "the fallback carries the candidate's lineage"
    assert run.data.tags["dataset"] == "aus_retail"
    assert run.info.run_name == f"aus_retail/{segment} seasonal-naive fallback"

    # Its forecast is each month's value a year before.
    model = mlflow.pyfunc.load_model(f"models:/{reg.name(segment)}@champion")
    recent = history([segment], until="2016-12-01", since="2014-01-01")
    recent["month"] = pd.to_datetime(recent["month"])
    forecast = model.predict(recent[["series_id", "month", "y"]])
    assert len(forecast) == 12 * recent["series_id"].nunique()
    year_before = recent.set_index(["series_id", "month"])["y"]
    expected = [
        year_before[(s, m - pd.DateOffset(years=1))]
        for s, m in zip(forecast["series_id"], forecast["month"], strict=True)
    ]
    assert forecast["forecast"].tolist() == pytest.approx(expected)

    evaluations = table(ctx, names.EVALUATIONS).query("model_name == @reg.name(@segment)")
    fallback_row = evaluations.query("candidate_version == '2'").iloc[0]
    assert fallback_row["passed"] and "seasonal-naive fallback" in fallback_row["reasons"]
    assert fallback_row["candidate_mase"] == pytest.approx(fallback_row["naive_mase"])
    audit = table(ctx, names.AUDIT).query("model_name == @reg.name(@segment)")
    assert audit["to_version"].tolist() == ["2"]
    assert "candidate v1 refused" in audit["reason"].iloc[0]

    # The drift check retries a real model once the refusal is old enough.
    found = find_champions(ctx.mlflow, ctx.catalog, ctx.schema, prefix, [segment])
    assert found[segment].fallback
    waiting = recently_refused(
        ctx.mlflow, ctx.catalog, ctx.schema, prefix, [segment], date(2017, 1, 1), 3
    )
    assert {s: str(r) for s, r in waiting.items()} == {segment: "v1 refused, trained until 2016-12"}

    # Rerun: nothing new; then a candidate that beats seasonal naive replaces the fallback.
    again = run_month(ctx, worse, segments=(segment,), prefix=prefix)
    assert again["validate"].fallbacks == {} and again["deploy"].promoted == {}
    assert [str(v.version) for v in reg.versions(segment)] == ["2", "1"]
    better = run_month(ctx, RECIPE, segments=(segment,), prefix=prefix)
    assert better["validate"].passed == {segment: "3"}
    assert better["validate"].backtests_run == 0, "a fallback champion's backtest is naive's"
    assert better["deploy"].promoted == {segment: "3"}
    assert version_of(reg, segment, PREVIOUS_CHAMPION) == "2"


def test_a_refused_candidate_leaves_the_version_awaiting_approval_the_challenger(
    ctx: RunContext,
) -> None:
    """Prod before its first approval: month 1's challenger awaits a person when month 2's
    candidate is refused. A seasonal-naive fallback must not take the challenger alias from
    the version under review: it would await approval too, so the segment would gain no
    forecast, and the approver would find the version they reviewed superseded."""
    prefix, segment = "awaiting", SEGMENTS[0]
    first = run_month(ctx, RECIPE, segments=(segment,), prefix=prefix, approval=True)
    assert first["deploy"].awaiting == {segment: "1"}

    second = run_month(ctx, WORSE, segments=(segment,), prefix=prefix, approval=True)
    assert segment in second["validate"].refused
    assert second["validate"].fallbacks == {}
    assert second["validate"].fallbacks_withheld == {
        segment: "v1 awaits approval and stays the challenger (no seasonal-naive fallback: it "
        "would await approval too and supersede v1); approve it to forecast the segment"
    }
    reg = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, prefix)
    assert [str(v.version) for v in reg.versions(segment)] == ["2", "1"], "no fallback version"
    challenger = reg.alias(segment, CHALLENGER)
    assert challenger is not None and str(challenger.version) == "1"
    assert challenger.tags[DEPLOYMENT_STATUS] == AWAITING_APPROVAL
    assert second["deploy"].awaiting == {} and second["deploy"].promoted == {}

    job = approve.ApprovalConfig((f"{segment}=1",), "CAB-3", "lead@contoso.com", prefix, "78")
    assert approve.run(ctx, job) == {segment: "1"}
    assert version_of(reg, segment, CHAMPION) == "1"


def test_every_version_keeps_within_unity_catalogs_tag_limits(ctx: RunContext) -> None:
    """By now the registry holds champions, refused candidates, a fallback, a rolled-back
    and an approved version: each keeps room for a promotion's intent tag, and every key and
    value is one Unity Catalog accepts."""
    versions = [
        ctx.mlflow.get_model_version(m.name, v.version)
        for m in ctx.mlflow.search_registered_models()
        for v in ctx.mlflow.search_model_versions(f"name = '{m.name}'")
    ]
    assert len(versions) >= 6
    for version in versions:
        tags = dict(version.tags or {})
        in_flight = len(tags) + (PROMOTION_INTENT not in tags)
        assert in_flight <= MAX_VERSION_TAGS, f"{version.name} v{version.version}: {sorted(tags)}"
        for key, value in tags.items():
            assert not set(key) & set(".,-=/:") and len(key) <= 255, key
            assert len(value) <= TAG_VALUE_MAX, f"{key}: {len(value)} characters"


GOOD, BAD = (
    "tasmania__clothing_footwear_and_personal_accessory_retailing",
    "tasmania__other_retailing",
)


def test_failed_segment_is_reported_by_name_and_others_registered(
    ctx: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    frame = history([GOOD, BAD], until="2015-12-01", since="2009-01-01")
    # The same month twice in one series: that segment's history breaks the contract.
    duplicate = frame[frame["segment"] == BAD].head(1)
    write_gold(ctx, pd.concat([frame, duplicate], ignore_index=True))
    recipe = Recipe().with_overrides(xgb_params={"n_estimators": 10})
    config = train.TrainConfig(None, recipe, "demand", "/Shared/failures")
    with pytest.raises(train.SegmentTrainingError, match=f"{BAD}: .*twice") as failed:
        train.run(ctx, config)
    assert f"rerun with --segments {BAD} " in str(failed.value)
    # The full error is in the task's log once, where the segment failed.
    logged = [r for r in caplog.records if r.getMessage().startswith(f"segment {BAD} failed")]
    assert len(logged) == 1 and "twice" in logged[0].getMessage()
    registry = SegmentRegistry(ctx.mlflow, ctx.catalog, ctx.schema, "demand")
    assert [str(v.version) for v in registry.versions(GOOD)] == ["1"]
    assert registry.versions(BAD) == []


def test_a_failure_message_shows_a_few_errors_and_names_every_failed_segment() -> None:
    # PBS once failed 23 of 30 segments alike, each error a 30-row frame: the message was
    # ~7 KB, printed three times (task log, runner, job summary).
    example = "\n".join(f"{i}  2005-{i % 12 + 1:02d}  {i}.0" for i in range(30))
    failed = {
        f"s{i:02d}": f"logging/registration failed: {example}\nMlflowException: int64 {i}"
        for i in range(23)
    }

    message = train.failure_message(failed, segments=30, registered=7)

    assert message.startswith("23 of 30 segment(s) failed to train (the other 7 are registered)")
    assert "s00: MlflowException: int64 0; s01: " in message and "s02: " in message
    assert "s03: " not in message and "int64 3" not in message
    assert "; and 20 more (each segment's full error is in the train task's log above" in message
    assert f"--segments {','.join(sorted(failed))} (done segments are reused)" in message
    assert len(message) < 800 and "\n" not in message
    # Up to ERRORS_SHOWN failures: each error, no "more".
    few = train.failure_message({"a": "ValueError: x", "b": "ValueError: y"}, 5, 3)
    assert "a: ValueError: x; b: ValueError: y. Fix" in few and "more" not in few


def test_unknown_segments_are_refused_with_the_known_ones(ctx: RunContext) -> None:
    write_gold(ctx, history([GOOD], until="2012-12-01", since="2010-01-01"))
    with pytest.raises(SegmentSelectionError, match=r"not in .* known segments: tasmania"):
        read_history(ctx, ("atlantis__food",))
