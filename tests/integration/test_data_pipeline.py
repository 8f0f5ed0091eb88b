"""The monthly job's first half through the local runner, on a few real series.

Runs ``ingest -> validate_data -> build_features`` of ``resources/monthly_job.yml`` exactly
as ``demand-forecasting run monthly --target dev`` does (the bundle's YAML, its variables, the
wheel's entry points, one Spark session), on a copy of the bundle whose monthly job keeps only
those three tasks (later issues append more tasks to the same job).
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from monthly_support import assert_documented_columns

from demand_forecasting import names
from demand_forecasting.cli import main as cli_main
from demand_forecasting.data.config import parse_month
from demand_forecasting.data.plan_layout import plans_folder
from demand_forecasting.platform.context import build_context
from demand_forecasting.runner import yaml12
from demand_forecasting.runner.executor import run_job
from demand_forecasting.runner.results import JobResultState, JobRunResult

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DATA_TASKS = ("ingest", "validate_data", "build_features")
TABLES = (names.BRONZE, names.VALIDATED, names.SILVER, names.FEATURES)
#: Four real series of two segments, one of which starts in 1988.
SERIES = ["A3349335T", "A3349336V", "A3349337W", "A3349377R"]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A copy of the bundle whose monthly job runs the three data tasks only."""
    root = tmp_path / "bundle"
    root.mkdir()
    shutil.copy(REPO / "databricks.yml", root)
    shutil.copytree(REPO / "resources", root / "resources")
    job_file = root / "resources" / "monthly_job.yml"
    data: Any = yaml12.load(job_file.read_text(encoding="utf-8"))
    job = data["resources"]["jobs"]["monthly"]
    job["tasks"] = [t for t in job["tasks"] if t["task_key"] in DATA_TASKS]
    assert [t["task_key"] for t in job["tasks"]] == list(DATA_TASKS)
    job_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> str:
    """A bring-your-own dataset config: the bundled one, restricted to a few series."""
    path = tmp_path / "aus_retail_few.yml"
    path.write_text(
        "extends: aus_retail\nname: aus_retail_few\nfile_prefix: aus_retail_few\n"
        f"source: {{package_csv: {{include: {{Series ID: {SERIES}}}}}}}\n",
        encoding="utf-8",
    )
    return str(path)


def _run(bundle: Path, dataset: str, runs: Path) -> JobRunResult:
    run = run_job(bundle, "monthly", target="dev", variables={"dataset": dataset}, runs_dir=runs)
    failures = [f"{t.task_key}: {t.error}\n{t.traceback}" for t in run.failed_tasks]
    assert run.state is JobResultState.SUCCESS, "\n".join(failures)
    assert [t.task_key for t in run.tasks] == list(DATA_TASKS)
    return run


def test_monthly_job_data_tasks_through_the_runner(
    spark: object, state_dir: Path, bundle: Path, dataset: str, tmp_path: Path
) -> None:
    assert cli_main(["land", "--dataset", dataset, "--until", "2015-12"]) == 0
    # The runner's dev target: catalog dev, the schema resource's name (demand_forecasting).
    ctx = build_context("dev", "dev", "demand_forecasting", state_dir=state_dir)

    def counts() -> dict[str, int]:
        return {t: ctx.tables.read(ctx.table(t)).count() for t in TABLES}

    def versions() -> dict[str, int | None]:
        return {t: ctx.tables.version(ctx.table(t)) for t in (*TABLES, names.QUARANTINE)}

    first = _run(bundle, dataset, tmp_path / "runs")
    # Three series from 1982-04 (405 months to 2015-12) and one from 1988-04 (333 months).
    landed = 3 * 405 + 333
    assert first.tasks[1].values == {"rows_accepted": landed, "rows_quarantined": 0}
    history = counts()
    assert history == dict.fromkeys(TABLES, landed)
    ingest_args = first.tasks[0].arguments
    assert ingest_args[ingest_args.index("--dataset") + 1] == dataset

    assert cli_main(["land", "--dataset", dataset, "--next-month"]) == 0
    _run(bundle, dataset, tmp_path / "runs")
    assert counts() == {t: n + len(SERIES) for t, n in history.items()}
    gold = ctx.tables.read(ctx.table(names.FEATURES))
    assert gold.select("series_id", "month").distinct().count() == gold.count()
    newest = gold.where("month = '2016-01-01'").collect()
    assert len(newest) == len(SERIES) and all(r["lag_12"] is not None for r in newest)

    before = versions()
    third = _run(bundle, dataset, tmp_path / "runs")
    assert versions() == before  # nothing new: no table changed
    assert third.tasks[0].values == {"ingested_rows": 0}
    # A dataset without `planned` columns: no plan is expected, no plan table made.
    for table in (names.PLANS, names.PLANS_QUARANTINE, names.PLAN_FILES):
        assert not ctx.tables.exists(ctx.table(table))


def _plan_rows(folder: Path) -> list[tuple[str, date, float, float, date]]:
    """The rows of the plan files in ``folder`` as silver_plans should hold them."""
    rows = []
    for path in sorted(folder.glob("*.csv")):
        plan_month = parse_month(path.stem[-7:])
        with path.open(encoding="utf-8", newline="") as handle:
            for r in csv.DictReader(handle):
                month = parse_month(r["Period"])
                key = f"{r['Region']}|{r['Product']}"
                rows.append((key, month, float(r["Price"]), float(r["Promo"]), plan_month))
    return sorted(rows)


def test_plan_files_of_the_synthetic_dataset_fill_silver_plans(
    spark: object, state_dir: Path, bundle: Path, tmp_path: Path
) -> None:
    land = ["land", "--dataset", "synthetic", "--series", "8"]
    assert cli_main([*land, "--until", "1983-03"]) == 0
    ctx = build_context("dev", "dev", "demand_forecasting", state_dir=state_dir)
    folder = plans_folder(Path(ctx.volume_path(names.LANDING_VOLUME, "synthetic")))

    def plans() -> list[tuple[str, date, float, float, date]]:
        table = ctx.tables.read(ctx.table(names.PLANS))
        return sorted(
            (r.series_id, r.month, r.price, r.promo, r.plan_month) for r in table.collect()
        )

    first = _run(bundle, "synthetic", tmp_path / "runs")
    arguments = first.tasks[2].arguments
    assert arguments[arguments.index("--horizon") + 1] == "12"
    # Twelve plan files (1982-04 .. 1983-03), each of 8 series x the next 12 months.
    assert len(plans()) == 12 * 8 * 12
    assert_documented_columns(ctx, names.PLANS, extra=frozenset({"price", "promo"}))
    assert plans() == _plan_rows(folder)

    assert cli_main([*land, "--next-month"]) == 0
    _run(bundle, "synthetic", tmp_path / "runs")
    assert len(plans()) == 13 * 8 * 12
    assert plans() == _plan_rows(folder)
    # No bad plan row: like quarantine_sales, the plan quarantine is made for the first one.
    assert not ctx.tables.exists(ctx.table(names.PLANS_QUARANTINE))

    tables = (names.PLANS, names.PLANS_QUARANTINE, names.PLAN_FILES)
    before = {t: ctx.tables.version(ctx.table(t)) for t in tables}
    _run(bundle, "synthetic", tmp_path / "runs")
    assert {t: ctx.tables.version(ctx.table(t)) for t in tables} == before
