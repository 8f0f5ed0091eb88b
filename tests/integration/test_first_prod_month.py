"""The monthly job in a require_approval target (as prod) before and after its first approval,
run by the local runner on real data (Tasmania, three segments).

The first month trains every segment and deploy only marks the challengers awaiting approval:
nothing is forecast, and the run succeeds with a report for the approver. Approving one
segment and rerunning the month forecasts that segment; the others still wait, and the report
names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from monthly_support import handed_over, land_tiny_history

from demand_forecasting import names
from demand_forecasting.models import approve
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.runner.executor import run_job
from demand_forecasting.runner.results import JobResultState, JobRunResult, TaskStatus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CATALOG, SCHEMA, PREFIX = "dev", "demand_forecasting", "demand"
FOOD = "tasmania__food_retailing"
SEGMENTS = {FOOD, "tasmania__household_goods_retailing", "tasmania__other_retailing"}


class ProdLike:
    """The module's state folder and dataset; runs the monthly job with require_approval."""

    def __init__(self, state: Path, dataset: Path) -> None:
        self.state, self.dataset = state, dataset

    def run(self) -> JobRunResult:
        return run_job(
            ROOT,
            "monthly",
            target="dev",
            variables={"dataset": str(self.dataset), "require_approval": "true"},
            runs_dir=self.state / "runs",
        )

    def ctx(self) -> RunContext:
        return build_context("dev", CATALOG, SCHEMA, state_dir=self.state)

    def handed_over(self, run: JobRunResult, task_key: str, key: str) -> object:
        return handed_over(self.state, CATALOG, SCHEMA, run, task_key, key)

    def report(self) -> str:
        return (self.state / "reports" / "2015-12" / "report.md").read_text()

    def forecast_segments(self) -> set[str]:
        ctx = self.ctx()
        forecasts = ctx.tables.read(ctx.table(names.FORECASTS))
        return {r["segment"] for r in forecasts.select("segment").distinct().collect()}


@pytest.fixture(scope="module")
def prod_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdLike]:
    """History to 2015-12 (from 2006) landed; nothing run yet."""
    state = tmp_path_factory.mktemp("first_prod_month") / "state"
    patch = pytest.MonkeyPatch()
    patch.setenv("DEMAND_FORECASTING_HOME", str(state))
    dataset, _, _ = land_tiny_history(state, CATALOG, SCHEMA)
    yield ProdLike(state, dataset)
    patch.undo()


def states(run: JobRunResult) -> dict[str, tuple[TaskStatus, object]]:
    return {t.task_key: (t.status, t.error) for t in run.tasks}


def test_the_first_month_forecasts_nothing_and_succeeds_with_a_report_for_the_approver(
    prod_like: ProdLike,
) -> None:
    run = prod_like.run()

    assert run.state is JobResultState.SUCCESS, states(run)
    assert prod_like.handed_over(run, "deploy", "champions") == {}
    assert prod_like.forecast_segments() == set()
    text = prod_like.report()
    assert f"**Awaiting approval: {len(SEGMENTS)} segment(s) have no champion yet" in text
    assert f"## Awaiting approval ({len(SEGMENTS)})" in text
    assert "FAILED" not in text
    # Nothing was forecast, so the shared tasks have no series to split by: their cost is
    # unattributed, and the split still adds up to the run's (it fell short by theirs).
    assert_costs_add_up(prod_like, run)
    assert "attributed to no model** (ingest, validate_data, build_features, check_drift" in text
    assert "this run forecast no series" in text


def test_approving_one_segment_and_rerunning_the_month_forecasts_it_the_others_still_wait(
    prod_like: ProdLike,
) -> None:
    done = approve.approve(prod_like.ctx(), PREFIX, [FOOD], "CAB-1", actor="lead@contoso.com")
    assert set(done) == {FOOD}
    # Approving promotes only: nothing is forecast until the monthly job runs again.
    assert prod_like.forecast_segments() == set()

    run = prod_like.run()

    assert run.state is JobResultState.SUCCESS, states(run)
    assert prod_like.forecast_segments() == {FOOD}
    text = prod_like.report()
    waiting = sorted(SEGMENTS - {FOOD})
    top = text[: text.index("## Summary")]
    assert "**Awaiting approval: 2 segment(s) have no champion yet" in top
    assert ", ".join(waiting) in top and FOOD not in top
    assert "## Awaiting approval (2)" in text
    assert "by 1 segment champions" in text and f"{FOOD} (new v" in text
    # A rerun of the month: FOOD's decision is the first run's, and this run trained nothing.
    assert f"**This job run (`{run.run_id}`) is a rerun of 2015-12.**" in text
    assert "This rerun retrained nothing" in text
    assert_costs_add_up(prod_like, run)
    assert "attributed to no model" not in text  # FOOD forecast: its series carry them


def assert_costs_add_up(prod_like: ProdLike, run: JobRunResult) -> None:
    """The job run's model costs add up to its tasks' priced time (monitor left out), and
    the report's cost table to the total it names."""
    ctx = prod_like.ctx()
    costs = ctx.tables.read(ctx.table(names.MODEL_COSTS)).toPandas()
    costs = costs[costs["job_run_id"] == str(run.run_id)]
    telemetry = ctx.tables.read(ctx.table(names.TELEMETRY)).toPandas()
    tasks = telemetry[(telemetry["job_run_id"] == str(run.run_id))]
    priced = tasks.loc[tasks["task"] != "monitor", "duration_s"].sum() / 3600
    assert costs["cost"].sum() == pytest.approx(priced * costs["cost_per_hour"].iloc[0])
    text = prod_like.report()
    section = text[text.index("## Cost per model") : text.index("## Time per task")]
    total = float(re.search(r"\*\*([0-9.e-]+)\*\* in total", section).group(1))  # type: ignore[union-attr]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")][2:]
    assert len(rows) <= 11  # three models at most, and the unattributed line
    assert sum(float(cells[1]) for cells in rows) == pytest.approx(total, rel=0.01)
