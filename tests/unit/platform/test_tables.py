"""Tables by Unity Catalog name on the local platform: Delta round trip and time travel."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.tables import LocalDeltaTables, TableName


def test_table_name_parses_three_levels() -> None:
    assert TableName.parse("main.sales.bronze") == TableName("main", "sales", "bronze")
    assert str(TableName("a", "b", "c")) == "a.b.c"


@pytest.mark.parametrize("bad", ["bronze", "main.bronze", "a.b.c.d", "main..bronze", "a.b.c d"])
def test_table_name_rejects_non_uc_names(bad: str) -> None:
    with pytest.raises(ValueError, match=r"catalog\.schema\.table"):
        TableName.parse(bad)


def test_local_table_lives_under_state_warehouse(ctx: RunContext, state_dir: Path) -> None:
    assert isinstance(ctx.tables, LocalDeltaTables)
    name = ctx.table("bronze_sales")
    assert name == "main.demand_forecasting.bronze_sales"
    expected = state_dir / "warehouse" / "main" / "demand_forecasting" / "bronze_sales"
    assert ctx.tables.path(name) == expected.resolve()


def test_delta_round_trip_with_time_travel(ctx: RunContext) -> None:
    name = ctx.table("roundtrip")
    assert not ctx.tables.exists(name)
    assert ctx.tables.version(name) is None

    first = ctx.spark.createDataFrame([("a", 1.0), ("b", 2.0)], "series_id string, y double")
    ctx.tables.write(first, name, mode="overwrite")
    second = ctx.spark.createDataFrame([("c", 3.0)], "series_id string, y double")
    ctx.tables.write(second, name, mode="append")

    assert ctx.tables.exists(name)
    assert ctx.tables.version(name) == 1
    assertDataFrameEqual(ctx.tables.read(name), first.unionByName(second))
    assertDataFrameEqual(ctx.tables.read(name, version=0), first)

    # SQL reaches the same table through sql_ref (MERGE and friends use it).
    total = ctx.spark.sql(f"SELECT sum(y) AS total FROM {ctx.tables.sql_ref(name)}").first()
    assert total is not None and total["total"] == 6.0


def test_local_table_is_readable_by_an_independent_delta_reader(ctx: RunContext) -> None:
    from deltalake import DeltaTable

    name = ctx.table("independent")
    df = ctx.spark.createDataFrame([("a", 1.0), ("b", 2.0)], "series_id string, y double")
    ctx.tables.write(df, name, mode="overwrite")
    assert isinstance(ctx.tables, LocalDeltaTables)
    table = DeltaTable(str(ctx.tables.path(name)))
    assert table.version() == 0
    rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["series_id"])
    assert rows == [{"series_id": "a", "y": 1.0}, {"series_id": "b", "y": 2.0}]


def test_volume_path_mirrors_unity_catalog_layout(ctx: RunContext, state_dir: Path) -> None:
    path = Path(ctx.volume_path("landing", "aus_retail", "2015-12.csv"))
    assert (
        path
        == (
            state_dir
            / "volumes"
            / "main"
            / "demand_forecasting"
            / "landing"
            / "aus_retail"
            / "2015-12.csv"
        ).resolve()
    )


def test_first_local_load_is_true_until_the_table_exists(ctx: RunContext) -> None:
    from dataclasses import replace

    assert ctx.first_local_load("first_load")
    ctx.tables.write(ctx.spark.range(1), ctx.table("first_load"))
    assert not ctx.first_local_load("first_load")
    assert not replace(ctx, on_databricks=True).first_local_load("never_written")


def test_large_local_table_compares_the_data_files_with_the_bound(ctx: RunContext) -> None:
    from dataclasses import replace

    assert not ctx.large_local_table("sized", 0)  # no such table
    ctx.tables.write(ctx.spark.range(1000).coalesce(1), ctx.table("sized"))
    folder = ctx.tables.local_folder(ctx.table("sized"))
    assert folder is not None
    size = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
    assert size > 0
    assert ctx.large_local_table("sized", size - 1)
    assert not ctx.large_local_table("sized", size)
    assert not replace(ctx, on_databricks=True).large_local_table("sized", 0)


def _property_commits(ctx: RunContext, name: str) -> int:
    history = ctx.tables.delta_table(name).history()
    return history.filter("operation = 'SET TBLPROPERTIES'").count()


def test_retained_history_converges_a_table_created_with_other_properties(
    ctx: RunContext,
) -> None:
    name = ctx.table("older_release")
    ctx.spark.createDataFrame([("a", 1.0)], "series_id string, y double").write.format(
        "delta"
    ).option("delta.deletedFileRetentionDuration", "interval 7 days").save(
        str(ctx.tables.local_folder(name))
    )
    assert ctx.tables.properties(name).get("delta.deletedFileRetentionDuration") == (
        "interval 7 days"
    )  # as an older release (or Delta's default) left it; no log retention set

    changed = ctx.tables.retain_history(name, 730)

    wanted = "interval 730 days"
    assert changed == {
        "delta.deletedFileRetentionDuration": wanted,
        "delta.logRetentionDuration": wanted,
    }
    properties = ctx.tables.properties(name)
    assert properties["delta.deletedFileRetentionDuration"] == wanted
    assert properties["delta.logRetentionDuration"] == wanted
    assert _property_commits(ctx, name) == 1  # both in one commit
    version = ctx.tables.version(name)

    assert ctx.tables.retain_history(name, 730) == {}  # converged: nothing to write
    assert ctx.tables.version(name) == version


def test_retained_history_sets_both_when_only_one_differs(ctx: RunContext) -> None:
    name = ctx.table("half_set")
    ctx.tables.write(ctx.spark.createDataFrame([(1,)], "x int"), name)
    ctx.spark.sql(
        f"ALTER TABLE {ctx.tables.sql_ref(name)} SET TBLPROPERTIES "
        "('delta.logRetentionDuration' = 'interval 730 days')"
    )

    assert ctx.tables.retain_history(name, 730) == {
        "delta.deletedFileRetentionDuration": "interval 730 days"
    }
    assert _property_commits(ctx, name) == 2


def test_retained_history_is_never_shorter_than_delta_s_default(ctx: RunContext) -> None:
    name = ctx.table("short")
    ctx.tables.write(ctx.spark.createDataFrame([(1,)], "x int"), name)
    version = ctx.tables.version(name)
    with pytest.raises(ValueError, match="at least 7 days"):
        ctx.tables.retain_history(name, 3)
    assert ctx.tables.version(name) == version
