"""Month by month through all stages: exact growth, no duplicates, idle reruns, corrections."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_support import AUS_HEADER, write_landing_file
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from demand_forecasting import names
from demand_forecasting.data import build_features, features, ingest, validate
from demand_forecasting.data.config import DatasetConfig, load_dataset_config, parse_month
from demand_forecasting.data.features import add_features
from demand_forecasting.data.landing import land
from demand_forecasting.data.silver import build_silver
from demand_forecasting.platform.context import RunContext

TABLES = (names.BRONZE, names.VALIDATED, names.SILVER, names.FEATURES)
#: Three real series: two full ones and one that starts in 1988.
SERIES = ["A3349335T", "A3349336V", "A3349377R"]
INDUSTRY = "Electrical and electronic goods retailing"  # of A3349336V


@pytest.fixture
def tiny(tmp_path: Path) -> DatasetConfig:
    path = tmp_path / "aus_retail_tiny.yml"
    path.write_text(
        "extends: aus_retail\nname: aus_retail_tiny\nfile_prefix: aus_retail_tiny\n"
        f"source: {{package_csv: {{include: {{Series ID: {SERIES}}}}}}}\n",
        encoding="utf-8",
    )
    return load_dataset_config(str(path))


def _run_all(ctx: RunContext, config: DatasetConfig) -> None:
    ingest.run(ctx, ingest.IngestConfig(config))
    validate.run(ctx, validate.ValidateConfig(config, 0.05, parse_month("2018-12")))
    build_features.run(ctx, build_features.FeaturesConfig(config))


def _land_and_run(ctx: RunContext, config: DatasetConfig, until: str) -> Path:
    """Land the history up to ``until`` and run every stage; return the landing folder."""
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, config.name))
    land(config, folder, until=parse_month(until))
    _run_all(ctx, config)
    return folder


def _counts(ctx: RunContext) -> dict[str, int]:
    return {t: ctx.tables.read(ctx.table(t)).count() for t in TABLES}


def _versions(ctx: RunContext) -> dict[str, int | None]:
    return {t: ctx.tables.version(ctx.table(t)) for t in TABLES}


def _from_scratch(ctx: RunContext, config: DatasetConfig) -> DataFrame:
    """Gold as a full recompute from every validated row would have it."""
    validated = ctx.tables.read(ctx.table(names.VALIDATED))
    return add_features(build_silver(validated, config))


def test_monthly_increments_are_exact_and_idle_reruns_change_nothing(
    ctx: RunContext, tiny: DatasetConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _land_and_run(ctx, tiny, "1988-06")
    # Gold keeps its history for check_drift's time travel from its creation on.
    gold_name = ctx.table(names.FEATURES)
    kept = f"interval {build_features.FEATURE_HISTORY_DAYS} days"
    assert ctx.tables.properties(gold_name)["delta.deletedFileRetentionDuration"] == kept
    # As a gold table created by an older release has it: shorter file retention, no log's.
    ctx.spark.sql(
        f"ALTER TABLE {ctx.tables.sql_ref(gold_name)} SET TBLPROPERTIES "
        "('delta.deletedFileRetentionDuration' = 'interval 7 days')"
    )
    ctx.spark.sql(
        f"ALTER TABLE {ctx.tables.sql_ref(gold_name)} UNSET TBLPROPERTIES "
        "('delta.logRetentionDuration')"
    )
    first = _counts(ctx)
    # Two series from 1982-04 (75 months) and one from 1988-04 (3 months).
    assert first == dict.fromkeys(TABLES, 2 * 75 + 3)

    report = land(tiny, folder, next_month=True)
    month_rows = report.rows
    assert month_rows == 3
    _run_all(ctx, tiny)
    second = _counts(ctx)
    assert second == {t: first[t] + month_rows for t in TABLES}
    for table in (names.SILVER, names.FEATURES):
        rows = ctx.tables.read(ctx.table(table))
        assert rows.select("series_id", "month").distinct().count() == rows.count()
    gold = ctx.tables.read(ctx.table(names.FEATURES))
    assertDataFrameEqual(gold, _from_scratch(ctx, tiny).select(*gold.columns))

    # The next write converged the older table's properties, in one commit.
    properties = ctx.tables.properties(gold_name)
    assert properties["delta.deletedFileRetentionDuration"] == kept
    assert properties["delta.logRetentionDuration"] == kept
    history = ctx.tables.delta_table(gold_name).history()
    assert (
        history.filter("operation = 'SET TBLPROPERTIES'").count() == 1 + 1 + 1
    )  # create, test, converge
    versions = _versions(ctx)
    _run_all(ctx, tiny)  # nothing new anywhere
    assert _versions(ctx) == versions
    assert _counts(ctx) == second

    # Locally the checkpoints say so without starting a single streaming query.
    def no_query(*_args: object) -> None:
        raise AssertionError("a streaming query started although nothing was new")

    for stage in (ingest, validate, build_features):
        monkeypatch.setattr(stage, "run_available_now", no_query)
    _run_all(ctx, tiny)
    assert _versions(ctx) == versions


def test_a_corrected_month_updates_silver_and_the_features_after_it(
    ctx: RunContext, tiny: DatasetConfig
) -> None:
    folder = _land_and_run(ctx, tiny, "1983-12")
    before = _counts(ctx)

    # The ERP re-sends 1983-01 of one series with a corrected value.
    write_landing_file(
        folder,
        "aus_retail_tiny_1983-01_correction.csv",
        [f'"New South Wales","{INDUSTRY}","A3349336V",1983-01-01,999'],
        header=AUS_HEADER,
    )
    _run_all(ctx, tiny)

    after = _counts(ctx)
    assert after[names.BRONZE] == before[names.BRONZE] + 1
    assert after[names.SILVER] == before[names.SILVER]  # updated in place, not added
    assert after[names.FEATURES] == before[names.FEATURES]
    silver = ctx.tables.read(ctx.table(names.SILVER))
    fixed = silver.where((F.col("series_id") == "A3349336V") & (F.col("month") == "1983-01-01"))
    assert [r["y"] for r in fixed.collect()] == [999.0]
    gold = ctx.tables.read(ctx.table(names.FEATURES))
    lagged = gold.where((F.col("series_id") == "A3349336V") & (F.col("month") == "1983-02-01"))
    assert [r["lag_1"] for r in lagged.collect()] == [999.0]
    assertDataFrameEqual(gold, _from_scratch(ctx, tiny).select(*gold.columns))


def _add_a_24_month_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """data/features.py gains the features roll_mean_24 and roll_std_24."""
    monkeypatch.setattr(features, "WINDOWS", (*features.WINDOWS, 24))
    monkeypatch.setattr(build_features, "LOOK_BACK", 24)


def test_a_feature_added_to_the_code_fills_the_whole_history_of_an_existing_gold_table(
    ctx: RunContext, tiny: DatasetConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _land_and_run(ctx, tiny, "1985-06")

    # data/features.py gains a 24-month window (roll_mean_24, roll_std_24) and drops yoy_growth.
    _add_a_24_month_window(monkeypatch)
    built = features.add_features
    monkeypatch.setattr(build_features, "add_features", lambda s: built(s).drop("yoy_growth"))
    land(tiny, folder, next_month=True)
    _run_all(ctx, tiny)

    gold = ctx.tables.read(ctx.table(names.FEATURES))
    assert {"roll_mean_24", "roll_std_24", "yoy_growth"} <= set(gold.columns)
    expected = _from_scratch(ctx, tiny).drop("yoy_growth")
    assertDataFrameEqual(gold.drop("yoy_growth"), expected.select(*gold.drop("yoy_growth").columns))
    newest = gold.where(F.col("month") == "1985-07-01")
    assert [r["yoy_growth"] for r in newest.collect()] == [None, None]  # retired: null from now on
    assert gold.where(F.col("roll_mean_24").isNotNull()).count() == 2 * (40 - 23)


def test_a_feature_whose_history_rewrite_failed_is_filled_by_the_rerun(
    ctx: RunContext, tiny: DatasetConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The column is added (ALTER TABLE, one commit), then the run dies in the rewrite of the
    # whole history (a MERGE over every row: the heaviest write, killed or out of memory).
    folder = _land_and_run(ctx, tiny, "1985-06")
    _add_a_24_month_window(monkeypatch)
    land(tiny, folder, next_month=True)
    written = build_features.write_changes
    gold_name = ctx.table(names.FEATURES)

    def dies_on_gold(ctx_: RunContext, changes: DataFrame, name: str) -> int:
        if name == gold_name:
            raise RuntimeError("killed during the rewrite of gold's history")
        return written(ctx_, changes, name)

    with monkeypatch.context() as dying:
        dying.setattr(build_features, "write_changes", dies_on_gold)
        with pytest.raises(Exception, match="killed during the rewrite"):
            _run_all(ctx, tiny)

    _run_all(ctx, tiny)  # the rerun (or the task's retry)

    gold = ctx.tables.read(ctx.table(names.FEATURES))
    assert "roll_mean_24" in gold.columns
    assertDataFrameEqual(gold, _from_scratch(ctx, tiny).select(*gold.columns))
    assert gold.where(F.col("roll_mean_24").isNotNull()).count() == 2 * (40 - 23)
    detail = ctx.tables.delta_table(gold_name).detail().first()
    assert detail is not None
    assert build_features.BACKFILL_PROPERTY not in (detail["properties"] or {})
