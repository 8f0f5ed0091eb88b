"""Task ``ingest``: new landing files -> the bronze Delta table, incrementally and exactly once.

Every landing file new to the run is first checked as a whole (:func:`check_new_landing_files`;
files already ingested are not read again): a file that is not UTF-8 text, a blank file or a
header without the dataset's columns stops the task before anything is read, naming every such
file and its rule.
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
from collections.abc import Collection, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

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
    files_read,
    files_read_in,
    folders_read_besides,
    run_available_now,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import generated_code
from demand_forecasting.platform.tables import TableStore
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


@dataclass(frozen=True)
class LandingFiles:
    """The landing folder as the file rules left it, before the stream starts."""

    #: Every landing file, in name order.
    listed: tuple[Path, ...]
    #: Those new to this run (not ingested yet, or changed since): the ones checked.
    new: tuple[Path, ...]
    #: Of ``new``, those already ingested once and modified since (``landed_file_unchanged``).
    changed: tuple[Path, ...]
    #: Names of the ``new`` files whose last line has no line break (maybe cut short).
    cut_short: tuple[str, ...]


def check_new_landing_files(ctx: RunContext, config: DatasetConfig, folder: Path) -> LandingFiles:
    """Every check ingest makes of the landing files before its stream starts.

    Only files new to this run are read: the folder keeps every month ever delivered, and on a
    volume each read is a remote GET. What is already in comes from the stream's own record,
    the cheapest reliable one on each platform: locally the file-source checkpoint's file log
    (what the stream will not read again; parsed without Spark), on Databricks bronze's
    ``source_file`` and ``file_modification_time`` (Auto Loader keeps its file state in
    RocksDB, which only Databricks reads). A file whose modification time differs from the
    one recorded is new again: the file rules check it, and locally it is then refused
    (``landed_file_unchanged``).

    Raises:
        LandingFileError: a file rule, ``one_dataset_per_schema`` or ``landed_file_unchanged``
            is broken (nothing has been ingested).
    """
    checkpoint = ctx.volume_path(names.CHECKPOINT_VOLUME, names.BRONZE)
    if ctx.on_databricks:
        ingested = ingested_files_in_bronze(ctx.tables, ctx.table(names.BRONZE))
    else:
        read = files_read(checkpoint)  # the checkpoint's file log, parsed once
        check_one_dataset(checkpoint, folder, f"{ctx.catalog}.{ctx.schema}", read)
        ingested = files_read_in(read, folder)
    landing = check_landing_files(folder, config, ingested)
    if not ctx.on_databricks:
        check_unchanged_since_read(landing.changed)
    return landing


def check_landing_files(
    folder: Path, config: DatasetConfig, ingested: Mapping[str, int] | None = None
) -> LandingFiles:
    """Check the landing files of ``folder`` that are new as a whole, reading each once.

    Args:
        ingested: ``{file name: modification time in ms}`` of the files already ingested;
            a listed file with that name and time is not read (default: none ingested).

    Raises:
        LandingFileError: a file is not UTF-8 text, is blank (no header, or a header and no
            rows) or its header is not the dataset's columns in order; the message names
            every such file (up to :data:`MAX_NAMED_FILES`) with the rule it broke, and what
            to do. Nothing has been read into bronze when this is raised.
    """
    listed = sorted(p for p in folder.glob("*.csv") if not p.name.startswith((".", "_")))
    ingested = ingested or {}
    new = [p for p in listed if not _already_ingested(p, ingested)]
    problems, cut_short = [], []
    for path in new:
        data = path.read_bytes()
        if problem := file_problem(path, data, config):
            problems.append(problem)
        elif ends_without_line_break(data):
            cut_short.append(path.name)
    _raise_file_problems(problems)
    changed = tuple(p for p in new if p.name in ingested)
    return LandingFiles(tuple(listed), tuple(new), changed, tuple(cut_short))


def _modified_ms(path: Path) -> int:
    """The file's modification time in ms, as Spark records it."""
    return path.stat().st_mtime_ns // 1_000_000


def _already_ingested(path: Path, ingested: Mapping[str, int]) -> bool:
    recorded = ingested.get(path.name)
    return recorded is not None and same_modification_time(recorded, _modified_ms(path))


def same_modification_time(recorded_ms: int, listed_ms: int) -> bool:
    """Whether a landing file listed now (``listed_ms``) is the one ingested (``recorded_ms``).

    Both are ms since the epoch (UTC: ``unix_millis`` of bronze's TIMESTAMP does not depend
    on the session time zone, nor does ``os.stat``). Their precision can differ on
    Databricks: bronze's ``file_modification_time`` is ``_metadata.file_modification_time``, a
    TIMESTAMP filled from the storage listing, which on ADLS Gen2 is an RFC 1123 date (whole
    seconds: "File metadata column", https://docs.databricks.com/aws/ingestion/file-metadata-column
    shows ``2021-12-20 20:05:21``; the ADLS ``lastModified`` is ``DateTimeRfc1123``), while
    ``os.stat`` of the file through ``/Volumes`` may carry milliseconds. Compared exactly,
    every file would look rewritten and be read again on every run. So when either side is
    a whole second, the two are compared to the second: a rewrite in a later second is still
    new; one within the same second cannot be told apart by a listing that keeps seconds.
    """
    if recorded_ms == listed_ms:
        return True
    whole_second = recorded_ms % 1000 == 0 or listed_ms % 1000 == 0
    return whole_second and recorded_ms // 1000 == listed_ms // 1000


def _raise_file_problems(problems: list[str]) -> None:
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


#: The most files a file-rule error names one by one.
MAX_NAMED_FILES = 10


def file_problem(
    path: Path, data: bytes, config: DatasetConfig, expected: Sequence[str] | None = None
) -> str | None:
    """What is wrong with the file (``data``: its bytes) as a whole (a sentence naming it and
    the rule), or None.

    Args:
        expected: the header the file must have (default: the dataset's landing columns; a
            plan file has fewer, :func:`demand_forecasting.data.plans.plan_landing_columns`).
    """
    expected = list(config.landing_columns if expected is None else expected)
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


def ends_without_line_break(data: bytes) -> bool:
    """True when a file's last line (``data``: its bytes) has no line break and is not blank:
    a row that the CSV reader reads although the file may have been cut short after it
    (mid-number, even).

    CRLF and CR line breaks count as line breaks; a blank last line (only spaces) holds no row
    (the reader skips it), so it is not a cut row.
    """
    if not data or data.endswith((b"\n", b"\r")):
        return False
    last = data[max(data.rfind(b"\n"), data.rfind(b"\r")) + 1 :]
    # Blank as Spark's reader sees it (Java's trim: bytes up to the space).
    return any(byte > 0x20 for byte in last)


def ingested_files_in_bronze(tables: TableStore, bronze: str) -> dict[str, int]:
    """``{file name: modification time in ms}`` of the landing files with rows in ``bronze``
    (every ingested file has one: the file rules refuse a file without rows)."""
    if not tables.exists(bronze):
        return {}
    files = (
        tables.read(bronze)
        .groupBy("source_file")
        .agg(F.max(F.unix_millis("file_modification_time")).alias("modified"))
        .collect()
    )
    # Spark gives the path URL-encoded (a space as %20, a '+' as it is).
    return {unquote(r["source_file"].rsplit("/", 1)[-1]): int(r["modified"]) for r in files}


def check_one_dataset(checkpoint: str, folder: Path, schema: str, read: Mapping[str, int]) -> None:
    """Refuse to ingest a dataset into a schema whose ingest stream read another dataset's
    landing folder (the stream, its checkpoint and the tables belong to one dataset).

    Args:
        read: the files the stream of ``checkpoint`` has read (:func:`files_read`).

    Raises:
        LandingFileError: naming both datasets, the rule (``one_dataset_per_schema``) and
            how to run the new one in a schema of its own.
    """
    others = folders_read_besides(read, folder)
    if others:
        raise LandingFileError(
            f"schema {schema} already holds dataset {', '.join(others)} (its ingest checkpoint "
            f"{checkpoint} read landing/{others[0]}); dataset {folder.name} cannot join it "
            "(rule: one_dataset_per_schema). Nothing was ingested. Give it a schema of its "
            f"own: `demand-forecasting land --dataset ... --schema {folder.name}` and `run "
            f"monthly --var dataset=... --var schema={folder.name}`."
        )


def check_unchanged_since_read(changed: Sequence[Path]) -> None:
    """Refuse landing files rewritten after the stream read them (``changed``:
    :attr:`LandingFiles.changed`, from the stream's checkpoint).

    The stream reads a path once (Auto Loader too, unless ``cloudFiles.allowOverwrites``), so a
    correction written over an ingested file would be ignored without a word.

    Raises:
        LandingFileError: naming the files, the rule (``landed_file_unchanged``) and the fix.
    """
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
    names whose last line has no line break, :attr:`LandingFiles.cut_short`), true for every
    other.

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
        LandingFileError: a landing file new to the run breaks a file rule, or (locally) an
            ingested one was rewritten or the schema holds another dataset (nothing ingested).
    """
    config = cfg.dataset
    folder = Path(ctx.volume_path(names.LANDING_VOLUME, config.name))
    folder.mkdir(parents=True, exist_ok=True)
    landing = check_new_landing_files(ctx, config, folder)
    bronze = ctx.table(names.BRONZE)
    checkpoint = ctx.volume_path(names.CHECKPOINT_VOLUME, names.BRONZE)
    # Locally the checkpoint tells whether any file is new without starting a query (seconds);
    # Auto Loader on Databricks keeps its own state, so there the query always runs.
    if not ctx.on_databricks and file_source_caught_up(checkpoint, folder):
        log.info(
            "ingest: the checkpoint has all %d file(s) in %s; no query started, bronze unchanged",
            len(landing.listed),
            folder,
        )
        ctx.task_values.set("ingested_rows", 0)
        return IngestRun(0, 0, ())
    log.info(
        "ingest: %d landing file(s) in %s new to this run passed the file rules; %d read by "
        "an earlier run were not read again",
        len(landing.new),
        folder,
        len(landing.listed) - len(landing.new),
    )
    ctx.tables.ensure_schema(ctx.catalog, ctx.schema)
    cut_files = landing.cut_short
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
        log.info(
            "ingest: no new files among the %d in %s; bronze unchanged", len(landing.listed), folder
        )
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
