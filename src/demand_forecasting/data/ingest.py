"""Task ``ingest``: new landing files -> the bronze Delta table, incrementally and exactly once.

Every landing file is first checked as a whole (:func:`check_landing_files`): a file that is not
UTF-8 text, a blank file or a header without the dataset's columns stops the task before
anything is read, naming every such file and its rule.
Then a stream reads the files it has not seen yet (Auto Loader on Databricks, Spark's file
source locally; both keep what they have read in a checkpoint) and appends their rows to bronze
with lineage: ``source_file``, ``file_modification_time``, ``load_time`` and ``batch_id`` (the
stream's micro-batch id). All columns stay text; a line that does not split into the header's
columns is kept with its raw text in ``_rescued_data``, and the last line of a file that does
not end with a line break (a file cut short, maybe mid-number) has ``line_terminated`` false.
Validation judges the rows later.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
from collections.abc import Collection, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig, load_dataset_config
from demand_forecasting.data.rules import LINE_TERMINATED, RESCUED
from demand_forecasting.data.streams import (
    append_once,
    checkpoint_query_id,
    file_source_caught_up,
    files_changed_since_read,
    folders_read_besides,
    run_available_now,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import generated_code
from demand_forecasting.task import TaskInputError, run_task

log = logging.getLogger(__name__)

#: Lineage columns every bronze row carries, after the dataset's own columns.
LINEAGE_COLUMNS = ("source_file", "file_modification_time", "load_time", "batch_id")


class LandingFileError(TaskInputError, ValueError):
    """A landing file as a whole breaks the contract (blank, or the wrong header)."""


@dataclass(frozen=True)
class IngestRun:
    """What one ingest run did (``rows_in`` / ``rows_out`` feed the task telemetry)."""

    rows_in: int
    rows_out: int
    batches: tuple[int, ...]


@dataclass(frozen=True)
class IngestConfig:
    """Parameters of the ingest task."""

    dataset: DatasetConfig


def bronze_columns(config: DatasetConfig) -> list[str]:
    """Bronze's columns: the canonical dataset columns (text), rescued data, lineage, then
    whether the row's line ended with a line break (last: added to bronze after the others)."""
    return [*config.canonical_columns, RESCUED, *LINEAGE_COLUMNS, LINE_TERMINATED]


# ----------------------------------------------------------------------- file-level checks


def check_landing_files(folder: Path, config: DatasetConfig) -> list[Path]:
    """Check every landing file of ``folder`` as a whole and return them in name order.

    Raises:
        LandingFileError: a file is not UTF-8 text, is blank (no header, or a header and no
            rows) or its header is not the dataset's columns in order; the message names
            every such file (up to :data:`MAX_NAMED_FILES`) with the rule it broke, and what
            to do. Nothing has been read into bronze when this is raised.
    """
    files = sorted(p for p in folder.glob("*.csv") if not p.name.startswith((".", "_")))
    problems = [problem for path in files if (problem := _file_problem(path, config))]
    if len(problems) == 1:
        raise LandingFileError(
            f"{problems[0]} Nothing was ingested. Replace or remove the file and run ingest "
            "again (it has not been read, so a corrected file may keep its name)."
        )
    if problems:
        more = len(problems) - MAX_NAMED_FILES
        raise LandingFileError(
            f"{len(problems)} landing files break a file rule: "
            + " ".join(problems[:MAX_NAMED_FILES])
            + (f" And {more} more." if more > 0 else "")
            + " Nothing was ingested. Replace or remove the files and run ingest again (they "
            "have not been read, so corrected files may keep their names)."
        )
    return files


#: The most files a file-rule error names one by one.
MAX_NAMED_FILES = 10


def _file_problem(path: Path, config: DatasetConfig) -> str | None:
    """What is wrong with the file as a whole (a sentence naming it and the rule), or None."""
    expected = list(config.landing_columns)
    data = path.read_bytes()
    try:
        # The whole file: Spark would read any byte that is not UTF-8 as U+FFFD, silently
        # changing a series id or a segment value.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (
            f"landing file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line "
            f"{line} (rule: file_is_utf8). Export it as UTF-8."
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    first_row = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if not header or not any(cell.strip() for cell in header):
        return f"landing file {path} is blank (rule: file_not_blank)."
    header = [cell.strip() for cell in header]
    if header != expected:
        missing = [c for c in expected if c not in header]
        unexpected = [c for c in header if c not in expected]
        detail = (f"missing {missing}" if missing else "") + (
            f"{'; ' if missing else ''}unexpected {unexpected}" if unexpected else ""
        )
        return (
            f"landing file {path} has header {header}, expected {expected} in this order "
            f"(rule: header_matches; {detail or 'columns out of order'}; dataset "
            f"{config.name!r})."
        )
    if first_row is None:
        return f"landing file {path} has a header but no rows (rule: file_not_blank)."
    return None


#: Bytes read from the end of a file to find its last line (more only if that line is longer).
_TAIL_BYTES = 4096


def ends_without_line_break(path: Path) -> bool:
    """True when the file's last line has no line break and is not blank: a row that the CSV
    reader reads although the file may have been cut short after it (mid-number, even).

    CRLF and CR line breaks count as line breaks; a blank last line (only spaces) holds no row
    (the reader skips it), so it is not a cut row. Reads only the file's end.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
        if tail.endswith((b"\n", b"\r")) or not tail:
            return False
        last = tail.replace(b"\r", b"\n").rsplit(b"\n", 1)
        if len(last) == 1 and len(tail) < size and not tail.strip():
            # A blank tail of a line longer than the tail: the whole line decides.
            handle.seek(0)
            last = handle.read().replace(b"\r", b"\n").rsplit(b"\n", 1)
    # Blank as Spark's reader sees it (Java's trim: bytes up to the space).
    return any(byte > 0x20 for byte in last[-1])


def files_cut_short(files: Sequence[Path]) -> list[Path]:
    """Those of ``files`` whose last line has no line break (:func:`ends_without_line_break`)."""
    return [path for path in files if ends_without_line_break(path)]


def check_one_dataset(checkpoint: str, folder: Path, schema: str) -> None:
    """Refuse to ingest a dataset into a schema whose ingest stream read another dataset's
    landing folder (the stream, its checkpoint and the tables belong to one dataset).

    Raises:
        LandingFileError: naming both datasets, the rule (``one_dataset_per_schema``) and
            how to run the new one in a schema of its own.
    """
    others = folders_read_besides(checkpoint, folder)
    if others:
        raise LandingFileError(
            f"schema {schema} already holds dataset {', '.join(others)} (its ingest checkpoint "
            f"{checkpoint} read landing/{others[0]}); dataset {folder.name} cannot join it "
            "(rule: one_dataset_per_schema). Nothing was ingested. Give it a schema of its "
            f"own: `demand-forecasting land --dataset ... --schema {folder.name}` and `run "
            f"monthly --var dataset=... --var schema={folder.name}`."
        )


def check_unchanged_since_read(checkpoint: str, files: list[Path]) -> None:
    """Refuse landing files rewritten after the stream of ``checkpoint`` read them.

    The stream reads a path once (Auto Loader too, unless ``cloudFiles.allowOverwrites``), so a
    correction written over an ingested file would be ignored without a word.

    Raises:
        LandingFileError: naming the files, the rule (``landed_file_unchanged``) and the fix.
    """
    changed = files_changed_since_read(checkpoint, files)
    if not changed:
        return
    first = changed[0]
    raise LandingFileError(
        f"landing file {first} changed after it was ingested (rule: landed_file_unchanged"
        + (
            f"; {len(changed) - 1} more: {', '.join(p.name for p in changed[1:6])}"
            if changed[1:]
            else ""
        )
        + "): a file is read once, so the change would never reach bronze. Nothing was "
        f"ingested. Rename it (e.g. to {first.stem}_correction.csv) to ingest it as a new "
        "file: the latest load wins in silver (and `land` still counts the month as landed)."
    )


# ---------------------------------------------------------------------------- streaming


def landing_schema(config: DatasetConfig) -> StructType:
    """The landing files' columns, all as text (types are judged by validation)."""
    return StructType([StructField(c, StringType()) for c in config.landing_columns])


def landing_stream(
    spark: SparkSession, folder: str, schema: StructType, use_auto_loader: bool
) -> DataFrame:
    """The stream of landing-file rows with the file's path and modification time.

    The one place that differs per platform: Auto Loader (``cloudFiles``) on Databricks,
    which lists a volume incrementally and puts what does not fit the schema in
    ``_rescued_data``; Spark's file source locally, which puts a malformed line whole into
    the same column (``columnNameOfCorruptRecord``). Both keep the rows.

    Args:
        use_auto_loader: ``RunContext.on_databricks``.
    """
    csv_options = {"header": "true", "mode": "PERMISSIVE", "multiLine": "false"}
    if use_auto_loader:
        reader = (
            spark.readStream.format("cloudFiles")
            .option("cloudFiles.format", "csv")
            .option("rescuedDataColumn", RESCUED)
            .schema(schema)
        )
    else:
        with_rescued = StructType([*schema.fields, StructField(RESCUED, StringType())])
        reader = (
            spark.readStream.format("csv")
            .option("columnNameOfCorruptRecord", RESCUED)
            .schema(with_rescued)
        )
    raw = reader.options(**csv_options).load(folder)
    return raw.select(
        *[F.col(f"`{f.name}`") for f in schema.fields],
        F.col(RESCUED),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_modification_time").alias("file_modification_time"),
        # Where the row's part of the file starts (a big file is read in parts): with the
        # row's order inside its part, the row's position in the file (to_bronze).
        F.col("_metadata.file_block_start").alias(_BLOCK_START),
    )


_BLOCK_START = "_file_block_start"
_ROW_IN_SCAN = "_row_in_scan"


def to_bronze(
    raw: DataFrame,
    config: DatasetConfig,
    batch_id: int,
    load_time: Column,
    cut_files: Collection[str] = (),
) -> DataFrame:
    """Rename the landing columns to canonical names and add the load time, the batch id and
    ``line_terminated``: false for the last row of each file named in ``cut_files`` (file
    names whose last line has no line break, :func:`files_cut_short`), true for every other.

    ``raw`` is a micro-batch of :func:`landing_stream` as the stream gives it (no shuffle
    before): a file's rows are read in file order, part by part, so the last row of a file is
    the one of its last-starting part that comes last in its scan partition.
    """
    renamed = [F.col(f"`{source}`").alias(name) for source, name in config.rename]
    terminated: Column = F.lit(True)
    if cut_files:
        # Spark gives the file's name URL-encoded (a space as %20, a '+' as it is).
        name = F.url_decode(F.regexp_replace(F.col("_file_name"), "[+]", "%2B"))
        position = F.struct(_BLOCK_START, _ROW_IN_SCAN)
        is_last = position == F.max(position).over(Window.partitionBy("source_file"))
        terminated = ~(name.isin(*sorted(cut_files)) & is_last)
        raw = raw.select(
            "*",
            F.regexp_extract("source_file", "[^/]*$", 0).alias("_file_name"),
            F.monotonically_increasing_id().alias(_ROW_IN_SCAN),
        )
    return raw.select(
        *renamed,
        F.col(RESCUED),
        "source_file",
        "file_modification_time",
        load_time.alias("load_time"),
        F.lit(batch_id).cast("long").alias("batch_id"),
        terminated.alias(LINE_TERMINATED),
    )


# ---------------------------------------------------------------------------------- task


def run(ctx: RunContext, cfg: IngestConfig) -> IngestRun:
    """Ingest new landing files of the dataset into bronze; return what was ingested.

    Raises:
        LandingFileError: a landing file is blank or has the wrong header (nothing ingested).
    """
    config = cfg.dataset
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, config.name))
    folder.mkdir(parents=True, exist_ok=True)
    files = check_landing_files(folder, config)
    bronze = ctx.table(names.BRONZE)
    checkpoint = ctx.volume_path(names.CHECKPOINT_VOLUME, names.BRONZE)
    if not ctx.on_databricks:
        check_one_dataset(checkpoint, folder, f"{ctx.catalog}.{ctx.schema}")
        check_unchanged_since_read(checkpoint, files)
    # Locally the checkpoint tells whether any file is new without starting a query (seconds);
    # Auto Loader on Databricks keeps its own state, so there the query always runs.
    if not ctx.on_databricks and file_source_caught_up(checkpoint, folder):
        log.info(
            "ingest: the checkpoint has all %d file(s) in %s; no query started, bronze unchanged",
            len(files),
            folder,
        )
        ctx.task_values.set("ingested_rows", 0)
        return IngestRun(0, 0, ())
    ctx.tables.ensure_schema(ctx.catalog, ctx.schema)
    cut_files = [path.name for path in files_cut_short(files)]
    stream = landing_stream(ctx.spark, str(folder), landing_schema(config), ctx.on_databricks)
    first_load = ctx.first_local_load(names.BRONZE)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        # The batch's queries run in the stream's own session (a clone of ctx.spark).
        with generated_code(batch.sparkSession) if first_load else nullcontext():
            rows = to_bronze(batch, config, batch_id, F.current_timestamp(), cut_files).persist()
            try:
                # mergeSchema: a bronze table written before line_terminated existed gets it.
                append_once(
                    ctx.tables,
                    rows,
                    bronze,
                    checkpoint_query_id(checkpoint),
                    batch_id,
                    merge_schema=True,
                )
                _log_batch(rows, bronze, batch_id)
            finally:
                rows.unpersist()

    result = run_available_now(stream, write_batch, checkpoint, f"ingest_{config.name}")
    if not result.batches:
        log.info("ingest: no new files among the %d in %s; bronze unchanged", len(files), folder)
    ctx.task_values.set("ingested_rows", result.input_rows)
    return IngestRun(result.input_rows, result.input_rows, result.batches)


def _log_batch(rows: DataFrame, bronze: str, batch_id: int) -> None:
    summary = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("source_file").alias("files"),
        F.count(RESCUED).alias("rescued"),
        F.array_sort(F.collect_set(F.when(~F.col(LINE_TERMINATED), F.col("source_file")))).alias(
            "cut"
        ),
    ).first()
    assert summary is not None
    if summary["cut"]:
        log.warning(
            "ingest: batch %d: %d landing file(s) end without a line break, so they may have "
            "been cut short (a complete file ends with one): %s. Their last row is in %s with "
            "%s false, and validate_data quarantines it (rule row_complete); land it again, "
            "with any rows the file lost, in a correction file of the month "
            "(<file_prefix>_<YYYY-MM>_correction.csv, ending with a line break)",
            batch_id,
            len(summary["cut"]),
            ", ".join(str(f).rsplit("/", 1)[-1] for f in summary["cut"]),
            bronze,
            LINE_TERMINATED,
        )
    log.info(
        "ingest: batch %d: %d row(s) from %d new file(s) into %s; %d line(s) did not "
        "split into the header's columns and are kept in %s for validation",
        batch_id,
        summary["rows"],
        summary["files"],
        bronze,
        summary["rescued"],
        RESCUED,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ingest task's own options."""
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (bundle variable `dataset`)",
    )


def make_config(args: argparse.Namespace) -> IngestConfig:
    """Typed config from the parsed options."""
    return IngestConfig(dataset=load_dataset_config(args.dataset))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-ingest``."""
    run_task(
        "ingest",
        "Ingest new landing files into the bronze table.",
        add_arguments,
        make_config,
        run,
        argv,
    )
