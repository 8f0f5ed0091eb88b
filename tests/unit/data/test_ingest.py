"""Ingest: whole-file checks, incremental exactly-once appends, malformed lines kept."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from data_support import write_landing_file
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig
from demand_forecasting.data.ingest import (
    IngestConfig,
    LandingFileError,
    bronze_columns,
    check_landing_files,
    run,
)
from demand_forecasting.platform.context import RunContext


def _rows(month: str, *series: str, value: str = "1.5") -> list[str]:
    return [f'"Tasmania","Liquor retailing","{s}",{month},{value}' for s in series]


def _landing(ctx: RunContext, config: DatasetConfig) -> Path:
    return Path(ctx.volume_path(names.LANDING_VOLUME, config.name))


def test_blank_file_is_a_file_level_error(tmp_path: Path, aus: DatasetConfig) -> None:
    (tmp_path / "aus_retail_2015-01.csv").write_text("", encoding="utf-8")
    with pytest.raises(LandingFileError, match=r"aus_retail_2015-01.csv is blank .*file_not_blank"):
        check_landing_files(tmp_path, aus)


def test_header_only_file_is_a_file_level_error(tmp_path: Path, aus: DatasetConfig) -> None:
    write_landing_file(tmp_path, "aus_retail_2015-01.csv", ["", "  "])
    with pytest.raises(LandingFileError, match="has a header but no rows"):
        check_landing_files(tmp_path, aus)


def test_missing_column_is_a_file_level_error(tmp_path: Path, aus: DatasetConfig) -> None:
    write_landing_file(
        tmp_path,
        "aus_retail_2015-01.csv",
        ['"Tasmania","Liquor retailing","A1",2015-01-01'],
        header='"State","Industry","Series ID","Month"',
    )
    with pytest.raises(LandingFileError, match=r"header_matches; missing \['Turnover'\]"):
        check_landing_files(tmp_path, aus)


def test_a_file_that_is_not_utf8_is_a_file_level_error(tmp_path: Path, aus: DatasetConfig) -> None:
    # An ERP export in Windows-1252, its one non-ASCII byte beyond the first 8 KiB read.
    rows = "\n".join(_rows("2015-01-01", *[f"A{i}" for i in range(200)]))
    text = f'"State","Industry","Series ID","Month","Turnover"\n{rows}\n'
    text += '"Tasmania","Caf\u00e9s","B1",2015-01-01,1.5\n'
    (tmp_path / "aus_retail_2015-01.csv").write_bytes(text.encode("cp1252"))
    with pytest.raises(
        LandingFileError, match=r"aus_retail_2015-01.csv is not UTF-8 .*line 202.*file_is_utf8"
    ):
        check_landing_files(tmp_path, aus)


def test_every_file_that_breaks_a_file_rule_is_named_at_once(
    tmp_path: Path, aus: DatasetConfig
) -> None:
    # Three bad files of one delivery: one error names the three with their rules (it named
    # the first only, so fixing them took a failed run each).
    write_landing_file(tmp_path, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    write_landing_file(
        tmp_path,
        "aus_retail_2015-02.csv",
        _rows("2015-02-01", "A1"),
        header='"State","Industry","Series ID","Month","Turnovr"',
    )
    write_landing_file(
        tmp_path,
        "aus_retail_2015-02_extra.csv",
        [f"{_rows('2015-02-01', 'A2')[0]},AUD"],
        header='"State","Industry","Series ID","Month","Turnover","Currency"',
    )
    (tmp_path / "aus_retail_2015-03.csv").write_text("", encoding="utf-8")

    with pytest.raises(LandingFileError) as error:
        check_landing_files(tmp_path, aus)

    message = str(error.value)
    assert message.startswith("3 landing files break a file rule: ")
    assert "aus_retail_2015-02.csv has header" in message and "unexpected ['Turnovr']" in message
    assert "aus_retail_2015-02_extra.csv has header" in message
    assert "unexpected ['Currency']" in message
    assert "aus_retail_2015-03.csv is blank (rule: file_not_blank)" in message
    assert "aus_retail_2015-01.csv" not in message and "Nothing was ingested" in message


def test_good_files_pass_and_hidden_files_are_ignored(tmp_path: Path, aus: DatasetConfig) -> None:
    write_landing_file(tmp_path, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    (tmp_path / ".aus_retail_2015-02.csv.tmp").write_text("", encoding="utf-8")
    assert [p.name for p in check_landing_files(tmp_path, aus)] == ["aus_retail_2015-01.csv"]


def test_ingest_is_incremental_and_exactly_once(ctx: RunContext, aus: DatasetConfig) -> None:
    folder = _landing(ctx, aus)
    bronze = ctx.table(names.BRONZE)
    write_landing_file(folder, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1", "A2"))
    write_landing_file(folder, "aus_retail_2015-02.csv", _rows("2015-02-01", "A1", "A2"))

    first = run(ctx, IngestConfig(aus))
    assert (first.rows_in, first.rows_out) == (4, 4)
    table = ctx.tables.read(bronze)
    assert table.columns == bronze_columns(aus)
    assert table.count() == 4
    version = ctx.tables.version(bronze)

    again = run(ctx, IngestConfig(aus))  # nothing new: no batch, no commit
    assert again.rows_in == 0 and again.batches == ()
    assert ctx.tables.version(bronze) == version

    write_landing_file(folder, "aus_retail_2015-03.csv", _rows("2015-03-01", "A1", "A2"))
    third = run(ctx, IngestConfig(aus))
    assert third.rows_in == 2
    rows = ctx.tables.read(bronze)
    assert rows.count() == 6
    per_batch = {
        r["batch_id"]: r["n"]
        for r in rows.groupBy("batch_id").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    assert sorted(per_batch.values()) == [2, 4] and len(per_batch) == 2
    newest = rows.where(F.col("batch_id") == max(per_batch)).collect()
    assert {r["source_file"].rsplit("/", 1)[-1] for r in newest} == {"aus_retail_2015-03.csv"}
    assert all(r["load_time"] is not None and r["file_modification_time"] for r in newest)


def test_malformed_lines_are_kept_and_a_bad_file_blocks_the_run(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    folder = _landing(ctx, aus)
    write_landing_file(
        folder,
        "aus_retail_2015-01.csv",
        [
            *_rows("2015-01-01", "A1"),
            '"Tasmania","Liquor retailing","A2",2015-01-01,1,2',
            '"Tasmania","Liquor retailing","A3"',
            *_rows("2015-01-01", "A4", value="abc"),
        ],
    )
    run(ctx, IngestConfig(aus))
    rows = {r["series_id"]: r for r in ctx.tables.read(ctx.table(names.BRONZE)).collect()}
    assert len(rows) == 4  # nothing dropped
    assert rows["A1"]["_rescued_data"] is None
    assert rows["A2"]["_rescued_data"] == '"Tasmania","Liquor retailing","A2",2015-01-01,1,2'
    assert rows["A3"]["_rescued_data"] is not None and rows["A3"]["turnover"] is None
    assert rows["A4"]["turnover"] == "abc"  # text kept as landed; validation judges it

    version = ctx.tables.version(ctx.table(names.BRONZE))
    write_landing_file(folder, "aus_retail_2015-02.csv", _rows("2015-02-01", "A1"))
    (folder / "aus_retail_2015-03.csv").write_text("", encoding="utf-8")
    with pytest.raises(LandingFileError, match=r"aus_retail_2015-03\.csv is blank"):
        run(ctx, IngestConfig(aus))
    assert ctx.tables.version(ctx.table(names.BRONZE)) == version  # nothing ingested


def test_a_landing_file_rewritten_after_ingest_is_refused_not_ignored(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    folder = _landing(ctx, aus)
    landed = write_landing_file(folder, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    run(ctx, IngestConfig(aus))
    bronze = ctx.tables.version(ctx.table(names.BRONZE))
    ingested_at = landed.stat().st_mtime_ns

    # A correction written over the ingested file: the stream would never read it again.
    write_landing_file(folder, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1", value="9.9"))
    os.utime(landed, ns=(ingested_at + 5_000_000_000, ingested_at + 5_000_000_000))
    with pytest.raises(
        LandingFileError,
        match=r"aus_retail_2015-01\.csv changed after it was ingested .*landed_file_unchanged.*"
        r"Rename it",
    ):
        run(ctx, IngestConfig(aus))
    assert ctx.tables.version(ctx.table(names.BRONZE)) == bronze

    # Renamed as the message says, the correction is ingested as a new file.
    landed.rename(folder / "aus_retail_2015-01_correction.csv")
    assert run(ctx, IngestConfig(aus)).rows_in == 1
    turnover = {r["turnover"] for r in ctx.tables.read(ctx.table(names.BRONZE)).collect()}
    assert turnover == {"1.5", "9.9"}


def test_a_second_dataset_in_the_same_schema_is_refused_naming_both(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    write_landing_file(_landing(ctx, aus), "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    run(ctx, IngestConfig(aus))
    bronze = ctx.tables.version(ctx.table(names.BRONZE))

    # The same columns under another dataset name, landed into the same schema by mistake.
    mine = dataclasses.replace(aus, name="my_sales", file_prefix="my_sales")
    write_landing_file(_landing(ctx, mine), "my_sales_2015-01.csv", _rows("2015-01-01", "M1"))
    with pytest.raises(
        LandingFileError,
        match=r"already holds dataset aus_retail .*one_dataset_per_schema.*--var schema=my_sales",
    ):
        run(ctx, IngestConfig(mine))
    assert ctx.tables.version(ctx.table(names.BRONZE)) == bronze
