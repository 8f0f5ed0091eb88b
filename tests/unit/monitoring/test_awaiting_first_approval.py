"""A require_approval target's first month: no champion yet, so score forecasts nothing.

Monitor must still write the report (with what awaits approval), succeed when every segment
without a champion has a challenger awaiting approval (the designed state before the first
approval), and fail after the report when a segment has neither.

Real Delta tables, the real sqlite registry and the real check_drift, deploy and score
tasks; versions are registered without training (no champion is loaded: score has none to
load), tagged as validation tags them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from monitoring_support import gold_frame, to_spark

from demand_forecasting import cli, names
from demand_forecasting.models import approve, deploy
from demand_forecasting.models.command_context import approve_options
from demand_forecasting.models.fallback import FALLBACK_TAG
from demand_forecasting.models.recipe import SEASONAL_NAIVE
from demand_forecasting.models.registry import (
    AWAITING_APPROVAL,
    DEPLOYMENT_STATUS,
    SegmentRegistry,
)
from demand_forecasting.models.validate import CHALLENGERS_KEY
from demand_forecasting.monitoring import check_drift, monitor
from demand_forecasting.monitoring.champions import find_champions
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.task_values import LocalTaskValues
from demand_forecasting.scoring import score
from registry_support import register_validated

PREFIX = "demand"
SEGMENTS = ("alpha", "beta", "gamma")
#: gold_frame's 37 months from 2019-01.
RUN_MONTH = date(2022, 1, 1)


def first_prod_month(
    ctx: RunContext, tmp_path: Path, passed: tuple[str, ...], refused: tuple[str, ...] = ()
) -> LocalTaskValues:
    """check_drift, validation's outcome, deploy (require_approval true) and score of a month
    in which no segment has a champion, as the job chains them (task values passed on)."""
    gold = gold_frame(dict.fromkeys(SEGMENTS, 2), date(2019, 1, 1), 37)
    ctx.tables.write(to_spark(ctx.spark, gold), ctx.table(names.FEATURES), mode="overwrite")
    ctx.task_values = values = LocalTaskValues()
    with values.running("check_drift"):
        check_drift.run(ctx, check_drift.DriftConfig(model_prefix=PREFIX))
    challengers = {s: register_validated(ctx, s, tmp_path, prefix=PREFIX) for s in passed}
    for segment in refused:
        register_validated(ctx, segment, tmp_path, passed=False, prefix=PREFIX)
    ctx.handover.publish("validate_models", {CHALLENGERS_KEY: challengers})
    with values.running("deploy"):
        deployed = deploy.run(ctx, deploy.DeployConfig(None, PREFIX, require_approval=True))
    assert deployed.awaiting == challengers and not deployed.promoted
    with values.running("score"):
        scored = score.run(ctx, score.ScoreConfig(model_prefix=PREFIX))
    assert scored.segments_without_champion == list(SEGMENTS) and scored.series_forecast == 0
    return values


def report_text(ctx: RunContext) -> str:
    assert ctx.state_dir is not None
    return (ctx.state_dir / monitor.REPORTS_FOLDER / "2022-01" / "report.md").read_text()


def test_everything_awaiting_approval_writes_the_report_and_does_not_fail(
    ctx: RunContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)

    summary = monitor.run(ctx, monitor.MonitorConfig())

    assert summary.run_month == RUN_MONTH and summary.report is not None
    text = report_text(ctx)
    # At the top, before the summary: why nothing is forecast and the commands that fix it.
    top = text[: text.index("## Summary")]
    assert "**Awaiting approval: 3 segment(s) have no champion yet" in top
    assert "alpha, beta, gamma" in top
    assert "databricks jobs run-now" in top
    assert "demand-forecasting approve <segment>=<version>" in top
    assert "`reported:<YYYY-MM>`" in top and "approve --as-reported <YYYY-MM>" in top
    assert "rerun this month (job `demand-forecasting-monthly`" in top
    assert "FAILED" not in text
    # The approver's table, with the gate's figures of each version.
    assert "## Awaiting approval (3)" in text
    for segment in SEGMENTS:
        assert f"| {segment} | 1 |" in text
    # The sections that need forecasts say why they are empty and what to do.
    accuracy = text[text.index("## Accuracy") : text.index("## Forecasts vs actuals")]
    assert "_No forecast has its month's actual yet" in accuracy
    forecasts = text[text.index("## Forecasts vs actuals") : text.index("## Cost per model")]
    assert "_No forecasts this month: no segment has a champion yet (3 await approval" in forecasts
    assert "rerun this month's monthly job" in forecasts
    # The sections that do not need forecasts are all there.
    for section in ("## Data quality", "## Retraining decisions", "## Drift", "## Time per task"):
        assert section in text
    assert "| alpha | retrain_no_champion |" in text
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "3 segment(s) have no champion yet and are not forecast: their challengers await "
        "approval" in message
        for message in warnings
    ), warnings


def test_a_segment_with_neither_champion_nor_anything_awaiting_fails_after_the_report(
    ctx: RunContext, tmp_path: Path
) -> None:
    # alpha awaits approval; beta's only version was refused (no fallback registered);
    # gamma never got a model (train failed for it).
    first_prod_month(ctx, tmp_path, passed=("alpha",), refused=("beta",))

    with pytest.raises(monitor.NoChampionError) as failed:
        monitor.run(ctx, monitor.MonitorConfig(model_prefix=PREFIX))

    message = str(failed.value)
    assert "monitor 2022-01: 2 segment(s) have data but no champion, and nothing awaits" in message
    assert (
        "beta: its newest version v1 was refused by validation (MASE 1.2 does not beat 1.1); "
        "no champion" in message
    )
    assert "gamma: no registered model main.demand_forecasting.demand_gamma" in message
    assert "alpha" not in message  # it waits for a person, as designed
    assert "Retrain them with the training job (--segments)" in message
    assert "run score first" not in message  # score ran: it had no champion to run
    # The report was written first: the failure at its top, the approval section below.
    text = report_text(ctx)
    top = text[: text.index("## Summary")]
    assert "**FAILED: 2 segment(s) have no champion and nothing awaiting approval**" in top
    assert "- gamma: no registered model main.demand_forecasting.demand_gamma" in top
    assert "**Awaiting approval: 1 segment(s) have no champion yet" in top
    assert "## Awaiting approval (1)" in text and "| alpha | 1 |" in text


def test_the_report_command_writes_a_month_without_forecasts_as_monitor_does(
    ctx: RunContext, tmp_path: Path
) -> None:
    # `demand-forecasting report` after the job: no forecast of the month exists (score had
    # no champion), yet the month ran; its report is written, not refused with "run score".
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)
    command = ["report", "--catalog", "main", "--schema", "demand_forecasting"]

    for month in ([], ["--run-month", "2022-01"]):  # the newest month, and that month named
        assert cli.main([*command, *month]) == 0
        text = report_text(ctx)
        top = text[: text.index("## Summary")]
        assert "**Awaiting approval: 3 segment(s) have no champion yet" in top
        assert "_No forecasts this month: no segment has a champion yet (3 await approval" in text
    # A month the job never ran is still refused, naming what there is.
    assert cli.main([*command, "--run-month", "2022-02"]) == 1


def test_the_pinned_local_command_copied_from_the_report_approves_those_versions(
    ctx: RunContext, tmp_path: Path
) -> None:
    # The report's command acts on the run's own schema (here main.demand_forecasting, not
    # the dev target's default): copied as printed, keeping one segment, it promotes it.
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)
    monitor.run(ctx, monitor.MonitorConfig())
    text = report_text(ctx)
    top = text[: text.index("## Summary")]
    assert "demand-forecasting approve <segment>=<version> ... --catalog main" in top
    pinned = re.search(r"\(locally: `demand-forecasting (approve [^`]*)`\)", text)
    assert pinned is not None
    command = shlex.split(pinned.group(1).replace("--reason ...", "--reason 'CAB-1 reviewed'"))
    command = [a for a in command if not a.startswith(("beta=", "gamma="))]

    assert cli.main(command) == 0
    champions = find_champions(ctx.mlflow, "main", "demand_forecasting", PREFIX, list(SEGMENTS))
    assert sorted(champions) == ["alpha"]


def test_the_approve_options_name_the_runs_schema_and_a_local_non_dev_target() -> None:
    assert approve_options("dev", "dev", "pbs", "demand", databricks=False) == (
        "--catalog dev --schema pbs"
    )
    assert approve_options("prod", "prod", "sales", "fc", databricks=False) == (
        "--target prod --local --catalog prod --schema sales --model-prefix fc"
    )
    assert approve_options("prod", "prod", "sales", "demand", databricks=True) == (
        "--target prod --catalog prod --schema sales"
    )


def test_the_approver_sees_which_version_awaiting_is_a_seasonal_naive_fallback(
    ctx: RunContext, tmp_path: Path
) -> None:
    # gamma's trained model was refused and its fallback awaits approval: its MASE equals
    # seasonal naive's, and the approver must know that it is no trained model.
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)
    ctx.mlflow.set_model_version_tag(
        f"main.demand_forecasting.{PREFIX}_gamma", "1", FALLBACK_TAG, SEASONAL_NAIVE
    )

    awaiting = monitor.awaiting_approval(ctx)

    assert dict(zip(awaiting["segment"], awaiting["model"], strict=True)) == {
        "alpha": "trained",
        "beta": "trained",
        "gamma": "seasonal-naive fallback",
    }
    monitor.run(ctx, monitor.MonitorConfig())
    assert "| gamma | 1 | seasonal-naive fallback |" in report_text(ctx)


def test_segments_awaiting_their_first_approval_wait_instead_of_retraining(
    ctx: RunContext, tmp_path: Path
) -> None:
    """Retraining a segment whose challenger awaits approval would supersede the version the
    approver is reviewing every month; it waits for the approver (wait_approval), while a
    segment with nothing at all still retrains."""
    first_prod_month(ctx, tmp_path, passed=("alpha", "beta"))

    summary = check_drift.run(ctx, check_drift.DriftConfig(model_prefix=PREFIX))

    assert summary.decision.decisions == {
        "alpha": "wait_approval",
        "beta": "wait_approval",
        "gamma": "retrain_no_champion",
    }
    assert summary.decision.segments_to_train == ("gamma",)


def tag_trained_until(ctx: RunContext, segments: tuple[str, ...], until: str) -> None:
    """Tag each segment's version 1 as train tags it: the newest month of its data."""
    for segment in segments:
        ctx.mlflow.set_model_version_tag(
            f"main.demand_forecasting.{PREFIX}_{segment}", "1", "trained_until", until
        )


def test_a_challenger_awaiting_approval_longer_than_approval_wait_months_is_retrained(
    ctx: RunContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody approved: after ``approval_wait_months`` months of waiting the segment is
    retrained, so that it does not stay without a model trained on recent data forever."""
    first_prod_month(ctx, tmp_path, passed=("alpha", "beta"))
    tag_trained_until(ctx, ("alpha",), "2022-01-01")
    tag_trained_until(ctx, ("beta",), "2021-12-01")
    # Three more months of data (to 2022-04).
    gold = gold_frame(dict.fromkeys(SEGMENTS, 2), date(2019, 1, 1), 40)
    ctx.tables.write(to_spark(ctx.spark, gold), ctx.table(names.FEATURES), mode="overwrite")
    wait_two = check_drift.DriftConfig(model_prefix=PREFIX, approval_wait_months=2)

    march = check_drift.run(ctx, replace(wait_two, run_month=date(2022, 3, 1)))
    april = check_drift.run(ctx, wait_two)

    # alpha (data to 2022-01) waits through 2022-03; beta (2021-12) waited two months by then.
    assert march.decision.decisions == {
        "alpha": "wait_approval",
        "beta": "retrain_approval_overdue",
        "gamma": "retrain_no_champion",
    }
    assert april.run_month == date(2022, 4, 1)
    assert april.decision.segments_to_train == ("alpha", "beta", "gamma")
    assert april.decision.decisions["alpha"] == "retrain_approval_overdue"
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        "segment alpha: v1 has awaited approval since its data of 2022-01, longer than "
        "approval_wait_months=2: retrained (retrain_approval_overdue)" in m
        for m in logged
    ), logged
    # 0: a challenger waits for the approver only in the month it was trained in.
    now = check_drift.run(ctx, replace(wait_two, approval_wait_months=0, run_month=RUN_MONTH))
    assert now.decision.decisions["alpha"] == "wait_approval"
    with pytest.raises(ValueError, match="approval_wait_months=-1: must be >= 0"):
        check_drift.DriftConfig(approval_wait_months=-1)


def test_the_report_marks_versions_retrained_next_month_and_overdue_ones(
    ctx: RunContext, tmp_path: Path
) -> None:
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)
    tag_trained_until(ctx, ("alpha",), "2022-01-01")  # waited 0 months of 1
    tag_trained_until(ctx, ("beta",), "2021-12-01")  # 1 of 1: retrained next month
    tag_trained_until(ctx, ("gamma",), "2021-11-01")  # 2 of 1: overdue (due this month)

    monitor.run(ctx, monitor.MonitorConfig(approval_wait_months=1))

    text = report_text(ctx)
    assert "| alpha | 1 | trained | " in text and "| 2022-03 |" in text
    assert "| 2022-02 (next month) |" in text
    assert "| overdue since 2022-01 |" in text
    assert (
        "**Approval due:** 1 retrained next month unless approved: beta; 1 overdue: gamma." in text
    )


def test_reported_month_approves_exactly_the_versions_that_months_report_listed(
    ctx: RunContext, tmp_path: Path
) -> None:
    # The report lists alpha and beta; gamma's version is marked after the report (another
    # run): the short form copied from the report approves the two it listed, not gamma.
    first_prod_month(ctx, tmp_path, passed=("alpha", "beta"))
    with pytest.raises(monitor.NoChampionError):  # gamma: no model yet; the report is written
        monitor.run(ctx, monitor.MonitorConfig(model_prefix=PREFIX))
    text = report_text(ctx)
    assert "set `segments` to `reported:2022-01`" in text
    short = re.search(r"\(locally: `demand-forecasting (approve --as-reported [^`]*)`\)", text)
    assert short is not None
    gamma = register_validated(ctx, "gamma", tmp_path, prefix=PREFIX)
    registry = SegmentRegistry(ctx.mlflow, "main", "demand_forecasting", PREFIX)
    registry.tag("gamma", gamma, {DEPLOYMENT_STATUS: AWAITING_APPROVAL})

    command = shlex.split(short.group(1).replace("--reason ...", "--reason 'CAB-2 reviewed'"))
    assert cli.main(command) == 0

    champions = find_champions(ctx.mlflow, "main", "demand_forecasting", PREFIX, list(SEGMENTS))
    assert {s: c.version for s, c in champions.items()} == {"alpha": "1", "beta": "1"}
    assert registry.awaiting_approval(["gamma"]) == {"gamma": gamma}
    reasons = {
        r["segment"]: r["reason"]
        for r in ctx.tables.read(ctx.table(names.AUDIT)).where("action = 'approve'").collect()
    }
    assert reasons["alpha"] == (
        "CAB-2 reviewed; as listed in the report of 2022-01; approved v1 as pinned"
    )


def test_reported_month_refuses_a_version_superseded_since_the_report(
    ctx: RunContext, tmp_path: Path
) -> None:
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)
    monitor.run(ctx, monitor.MonitorConfig(model_prefix=PREFIX))
    # A later run validated and marked beta's v2, superseding the v1 the report listed.
    newer = register_validated(ctx, "beta", tmp_path, prefix=PREFIX)
    registry = SegmentRegistry(ctx.mlflow, "main", "demand_forecasting", PREFIX)
    registry.tag("beta", newer, {DEPLOYMENT_STATUS: AWAITING_APPROVAL})

    with pytest.raises(LookupError) as refused:
        approve.approve(ctx, PREFIX, ["reported:2022-01"], "CAB-3", actor="lead@contoso.com")

    message = str(refused.value)
    assert "nothing was approved: 1 named segment(s)" in message
    assert (
        "beta (reviewed v1): its challenger awaiting approval is now v2, not the v1 named "
        "(v1 is superseded" in message
    )
    assert find_champions(ctx.mlflow, "main", "demand_forecasting", PREFIX, list(SEGMENTS)) == {}


def test_reported_month_with_nothing_listed_says_so_and_malformed_forms_are_refused(
    ctx: RunContext, tmp_path: Path
) -> None:
    first_prod_month(ctx, tmp_path, passed=SEGMENTS)
    with pytest.raises(LookupError, match="no report has listed any yet"):
        approve.approve(ctx, PREFIX, ["reported:2022-01"], "CAB-4")
    monitor.run(ctx, monitor.MonitorConfig(model_prefix=PREFIX))

    with pytest.raises(LookupError) as nothing:
        approve.approve(ctx, PREFIX, ["reported:2021-12"], "CAB-4")

    assert str(nothing.value) == (
        "nothing was approved: the report of 2021-12 listed no version awaiting approval in "
        "main.demand_forecasting.approval_requests (nothing awaited then, or the monthly "
        "job's monitor did not run that month); reports that listed some: 2022-01"
    )
    with pytest.raises(ValueError, match="write reported:YYYY-MM"):
        approve.approve(ctx, PREFIX, ["reported:2022-1"], "CAB-4")
    with pytest.raises(ValueError, match="name it alone"):
        approve.approve(ctx, PREFIX, ["reported:2022-01", "alpha"], "CAB-4")
    assert find_champions(ctx.mlflow, "main", "demand_forecasting", PREFIX, list(SEGMENTS)) == {}
