"""Ingest: whole-file checks, incremental exactly-once appends, malformed lines kept."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

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
    check_new_landing_files,
    ends_without_line_break,
    run,
    same_modification_time,
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
    assert [p.name for p in check_landing_files(tmp_path, aus).listed] == ["aus_retail_2015-01.csv"]


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


def _record_opens(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """Names of the files in ``folder`` that Python opens from now on (``Path.read_bytes``
    opens through ``Path.open`` too); Spark's own reads happen in the JVM."""
    opened: list[str] = []
    real_open = Path.open

    def recording_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.parent == folder:
            opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", recording_open)
    return opened


def test_a_run_reads_only_the_landing_files_new_to_it_and_each_once(
    ctx: RunContext, aus: DatasetConfig, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    # The folder keeps every month ever landed: checking them all made each month cost more
    # (and on a volume each read is a remote GET), and a new file's tail was read twice.
    folder = _landing(ctx, aus)
    for month in ("2015-01", "2015-02"):
        write_landing_file(folder, f"aus_retail_{month}.csv", _rows(f"{month}-01", "A1", "A2"))
    run(ctx, IngestConfig(aus))
    new = write_landing_file(folder, "aus_retail_2015-03.csv", _rows("2015-03-01", "A1", "A2"))
    new.write_bytes(new.read_bytes().rstrip(b"\n"))  # cut short: found from the same bytes
    opened = _record_opens(monkeypatch, folder)

    with caplog.at_level(logging.INFO, logger="demand_forecasting.data.ingest"):
        assert run(ctx, IngestConfig(aus)).rows_in == 2
    assert opened == ["aus_retail_2015-03.csv"]
    assert "new to this run passed the file rules; 2 read by an earlier run were not" in (
        caplog.text
    )
    bronze = ctx.tables.read(ctx.table(names.BRONZE))
    assert [r["series_id"] for r in bronze.where(~F.col("line_terminated")).collect()] == ["A2"]

    opened.clear()
    assert run(ctx, IngestConfig(aus)).rows_in == 0
    assert opened == []  # nothing new: nothing read


def _blank_later(path: Path) -> None:
    """Rewrite ``path`` blank, its modification time 5 s later (as a later write would)."""
    later = path.stat().st_mtime_ns + 5_000_000_000
    path.write_text("", encoding="utf-8")
    os.utime(path, ns=(later, later))


def test_on_databricks_bronze_tells_which_files_are_already_in(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    # Auto Loader's file state is RocksDB in its checkpoint; bronze's lineage says the same.
    # Spark names a file URL-encoded: a space as %20, a '+' as it is.
    folder = _landing(ctx, aus)
    first = write_landing_file(folder, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    write_landing_file(folder, "aus_retail_2015-01_re sent+1.csv", _rows("2015-01-01", "A1"))
    run(ctx, IngestConfig(aus))
    write_landing_file(folder, "aus_retail_2015-02.csv", _rows("2015-02-01", "A1"))
    databricks = dataclasses.replace(ctx, on_databricks=True)

    landing = check_new_landing_files(databricks, aus, folder)
    assert [p.name for p in landing.new] == ["aus_retail_2015-02.csv"]
    assert len(landing.listed) == 3

    _blank_later(first)  # rewritten after ingest: checked again
    with pytest.raises(LandingFileError, match=r"aus_retail_2015-01\.csv is blank"):
        check_new_landing_files(databricks, aus, folder)


#: 2026-01-03 06:00:05 UTC in ms, and the same instant with milliseconds.
_WHOLE_SECOND_MS = 1_767_420_005_000
_WITH_MS = _WHOLE_SECOND_MS + 123


@pytest.mark.parametrize(
    ("recorded", "listed", "same"),
    [
        (_WITH_MS, _WITH_MS, True),  # both in ms (local: checkpoint and os.stat)
        (_WHOLE_SECOND_MS, _WITH_MS, True),  # bronze from an RFC 1123 listing, stat in ms
        (_WITH_MS, _WHOLE_SECOND_MS, True),  # the other way round
        (_WHOLE_SECOND_MS, _WHOLE_SECOND_MS + 1_000, False),  # rewritten a second later
        (_WHOLE_SECOND_MS, _WITH_MS + 1_000, False),  # later second, stat in ms
        (_WITH_MS, _WITH_MS + 1, False),  # both in ms: any difference is a rewrite
    ],
)
def test_modification_times_of_either_precision_compare_without_missing_a_rewrite(
    recorded: int, listed: int, same: bool
) -> None:
    assert same_modification_time(recorded, listed) is same


def test_files_recorded_to_the_second_are_not_read_again_but_a_later_rewrite_is(
    tmp_path: Path, aus: DatasetConfig
) -> None:
    # On Databricks bronze may record whole seconds while os.stat of /Volumes has ms: every
    # file then looked rewritten, and each run read (a remote GET) every month ever landed.
    kept = write_landing_file(tmp_path, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    rewritten = write_landing_file(tmp_path, "aus_retail_2015-02.csv", _rows("2015-02-01", "A1"))
    for path in (kept, rewritten):
        os.utime(path, ns=(_WITH_MS * 1_000_000, _WITH_MS * 1_000_000))
    recorded = {kept.name: _WHOLE_SECOND_MS, rewritten.name: _WHOLE_SECOND_MS}
    later = (_WITH_MS + 2_000) * 1_000_000
    os.utime(rewritten, ns=(later, later))

    landing = check_landing_files(tmp_path, aus, recorded)

    assert [p.name for p in landing.new] == [rewritten.name]
    assert [p.name for p in landing.changed] == [rewritten.name]


def test_a_landing_file_rewritten_after_ingest_is_refused_not_ignored(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    folder = _landing(ctx, aus)
    landed = write_landing_file(folder, "aus_retail_2015-01.csv", _rows("2015-01-01", "A1"))
    run(ctx, IngestConfig(aus))
    bronze = ctx.tables.version(ctx.table(names.BRONZE))
    ingested_at = landed.stat().st_mtime_ns

    # Rewritten blank: checked again like a new file, its file rule says so (as when every
    # file was checked on every run).
    _blank_later(landed)
    with pytest.raises(LandingFileError, match=r"2015-01\.csv is blank .*file_not_blank"):
        run(ctx, IngestConfig(aus))
    assert ctx.tables.version(ctx.table(names.BRONZE)) == bronze

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


@pytest.mark.parametrize(
    ("ending", "cut"),
    [
        ("1.5\n", False),
        ("1.5\r\n", False),  # CRLF
        ("1.5\r", False),  # CR only: Spark's reader breaks lines there too
        ("1.5\n\n", False),  # a blank last line
        ("1.5\n  \t ", False),  # a last line of spaces: no row, nothing cut
        ("19", True),  # cut mid-number
        ('1.5\r\n"Tasmania","Liq', True),  # cut mid-row in a CRLF file
        ("1" + " " * 5000, True),  # a long last line
    ],
)
def test_a_file_ends_without_a_line_break_only_when_its_last_line_has_a_row_and_none(
    tmp_path: Path, ending: str, cut: bool
) -> None:
    data = '"State","Industry","Series ID","Month","Turnover"\n"T","L","A1",2016-06-01,' + ending
    assert ends_without_line_break(data.encode()) is cut


def test_the_last_row_of_a_file_cut_short_is_marked_and_no_other(
    ctx: RunContext, aus: DatasetConfig
) -> None:
    folder = _landing(ctx, aus)
    series = [f"A{i}" for i in range(6)]
    # Cut mid-number, the rest of the file lost: "19" where 193.5 was. A space and a '+' in
    # its name: Spark names the file URL-encoded.
    cut = folder / "aus_retail_2016-06_re sent+1.csv"
    write_landing_file(folder, cut.name, _rows("2016-06-01", *series))
    cut.write_bytes(cut.read_bytes() + b'"Tasmania","Liquor retailing","A3349764R",2016-06-01,19')
    # Complete files: LF, CRLF, and one whose last line is blank (no line break after it).
    write_landing_file(folder, "aus_retail_2016-05.csv", _rows("2016-05-01", *series))
    crlf = "\r\n".join(
        ['"State","Industry","Series ID","Month","Turnover"', *_rows("2016-04-01", *series)]
    )
    (folder / "aus_retail_2016-04.csv").write_bytes((crlf + "\r\n").encode())
    blank = write_landing_file(folder, "aus_retail_2016-03.csv", _rows("2016-03-01", *series))
    blank.write_bytes(blank.read_bytes() + b"   ")

    run(ctx, IngestConfig(aus))

    bronze = ctx.tables.read(ctx.table(names.BRONZE))
    assert bronze.columns == bronze_columns(aus)
    assert bronze.count() == 4 * 6 + 1  # every row kept, the cut one too
    unterminated = bronze.where(~F.col("line_terminated")).collect()
    assert [(r["series_id"], r["turnover"]) for r in unterminated] == [("A3349764R", "19")]
    assert unterminated[0]["source_file"].endswith("aus_retail_2016-06_re%20sent+1.csv")
    assert bronze.where(F.col("line_terminated").isNull()).count() == 0


def test_the_last_row_of_a_file_read_in_parts_is_found(ctx: RunContext, aus: DatasetConfig) -> None:
    # Bigger than Spark's smallest split (spark.sql.files.openCostInBytes, lowered here): the
    # file is read in several parts, and only the last row of the last part is cut.
    folder = _landing(ctx, aus)
    series = [f"A{i:05d}" for i in range(3000)]
    path = write_landing_file(folder, "aus_retail_2016-06.csv", _rows("2016-06-01", *series))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    spark = ctx.spark
    before = {k: spark.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes",)}
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    try:
        run(ctx, IngestConfig(aus))
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)

    bronze = ctx.tables.read(ctx.table(names.BRONZE))
    assert bronze.count() == 3000
    assert [r["series_id"] for r in bronze.where(~F.col("line_terminated")).collect()] == ["A02999"]
