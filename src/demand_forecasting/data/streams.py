"""Incremental, exactly-once steps: a stream with a checkpoint, run once over what is new.

Every stage of the pipeline reads its input as a stream (landing files, then Delta tables),
processes each micro-batch with a function of ``(batch, batch_id)`` and stops when the input
is exhausted (``trigger(availableNow=True)``). The checkpoint remembers what was processed,
so a rerun with nothing new runs no batch and writes nothing. A batch function writes with
:func:`append_once`, which Delta skips when the same query already committed that batch id
(a batch replayed after a crash is not written twice).

Starting a query costs seconds even when it finds nothing, so on the local platform a task
first asks its checkpoint whether anything is new (:func:`file_source_caught_up`,
:func:`delta_source_caught_up`): the checkpoint stays the one source of truth, read as Spark
wrote it, and any doubt (a batch planned but not committed, a format not understood) means
"run the query".
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame

from demand_forecasting.platform.tables import TableStore

log = logging.getLogger(__name__)

BatchFunction = Callable[[DataFrame, int], None]


class StreamFailedError(RuntimeError):
    """A stream stopped with an error that did not come from the batch function."""


@dataclass(frozen=True)
class StreamRun:
    """What one availableNow run processed."""

    batches: tuple[int, ...]
    input_rows: int


def run_available_now(
    source: DataFrame, process: BatchFunction, checkpoint: str, name: str
) -> StreamRun:
    """Run ``process`` on every new micro-batch of ``source`` and wait until it is done.

    Args:
        source: a streaming DataFrame.
        process: called with each micro-batch and its id (ids grow by one per batch and are
            stable across retries of the same batch).
        checkpoint: the query's checkpoint folder (a local path or a volume path).
        name: the query name, for logs and errors.

    Raises:
        Exception: whatever ``process`` raised, as it raised it (a failed batch is not
            committed to the checkpoint, so the next run retries it).
        StreamFailedError: the stream failed outside ``process``.
    """
    errors: list[Exception] = []

    def guarded(batch: DataFrame, batch_id: int) -> None:
        try:
            process(batch, batch_id)
        except Exception as exc:
            errors.append(exc)
            raise

    failure: StreamingQueryException | None = None
    with _quiet_stream_failures(source):
        query = (
            source.writeStream.queryName(name)
            .foreachBatch(guarded)
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .start()
        )
        try:
            query.awaitTermination()
        except StreamingQueryException as exc:
            failure = exc
    if failure is not None:
        if errors:
            raise errors[-1]
        raise StreamFailedError(f"stream {name} failed: {failure.getMessage()}") from failure
    progress = [p for p in query.recentProgress if p.numInputRows]
    return StreamRun(
        tuple(int(p.batchId) for p in progress), sum(int(p.numInputRows) for p in progress)
    )


#: Loggers that report a failed batch function a second and third time, with stack traces:
#: py4j's callback server (Python) and the stream's execution (JVM).
_PY4J_CALLBACK_LOGGER = "py4j.clientserver"
_STREAM_EXECUTION_LOGGER = "org.apache.spark.sql.execution.streaming"


@contextmanager
def _quiet_stream_failures(source: DataFrame) -> Iterator[None]:
    """Silence the loggers that print a failed batch's error as stack traces while the query
    runs: :func:`run_available_now` raises that error itself, once, as the function raised it
    (a gate's message otherwise came after ~100 lines of Python and Java traces)."""
    callback = logging.getLogger(_PY4J_CALLBACK_LOGGER)
    level = callback.level
    callback.setLevel(logging.CRITICAL)
    configurator = jvm_level = None
    try:
        # Classic Spark only (Spark Connect has no JVM in this process).
        jvm: Any = source.sparkSession._jvm
        log4j = jvm.org.apache.logging.log4j
        configurator = log4j.core.config.Configurator
        jvm_level = log4j.LogManager.getLogger(_STREAM_EXECUTION_LOGGER).getLevel()
        configurator.setLevel(_STREAM_EXECUTION_LOGGER, log4j.Level.OFF)
    except Exception:  # no JVM logging to quiet: the traces stay
        configurator = None
    try:
        yield
    finally:
        callback.setLevel(level)
        if configurator is not None:
            configurator.setLevel(_STREAM_EXECUTION_LOGGER, jvm_level)


def checkpoint_query_id(checkpoint: str) -> str:
    """The id of the query that owns ``checkpoint`` (stable across restarts of that query).

    Spark writes it to ``<checkpoint>/metadata`` when the query first starts. A new
    checkpoint gets a new id, so its batch ids never collide with an old one's in Delta.
    """
    metadata = Path(checkpoint) / "metadata"
    return str(json.loads(metadata.read_text(encoding="utf-8").splitlines()[0])["id"])


def append_once(
    tables: TableStore,
    df: DataFrame,
    name: str,
    app_id: str,
    batch_id: int,
    *,
    merge_schema: bool = False,
) -> None:
    """Append ``df`` to table ``name`` unless batch ``batch_id`` of ``app_id`` is already in it.

    Delta's idempotent writes (``txnAppId`` + ``txnVersion``) make a replayed micro-batch a
    no-op, which with the checkpoint gives exactly-once. With ``merge_schema``, columns of
    ``df`` the table lacks are added to it (its older rows null there).
    """
    options = {"mergeSchema": "true"} if merge_schema else {}
    tables.write(df, name, mode="append", txnAppId=app_id, txnVersion=str(batch_id), **options)


# ------------------------------------------------------------------ is anything new? (local)

_BATCH_FILE = re.compile(r"^(\d+)(\.compact)?$")


def _batch_files(folder: Path) -> dict[int, Path]:
    """``{batch id: file}`` of a checkpoint log folder (hidden and temporary files skipped)."""
    if not folder.is_dir():
        return {}
    found = (_BATCH_FILE.match(p.name) for p in folder.iterdir())
    return {int(m.group(1)): folder / m.group(0) for m in found if m}


def _log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines after a checkpoint log file's version header (``v1``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("v"):
        raise ValueError(f"{path} is not a checkpoint log file")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _committed_offset(checkpoint: Path) -> dict[str, Any] | None:
    """The source offset of the last batch when every planned batch is committed, else None."""
    offsets = _batch_files(checkpoint / "offsets")
    commits = _batch_files(checkpoint / "commits")
    if not offsets or not commits or max(offsets) != max(commits):
        return None
    entries = _log_lines(offsets[max(offsets)])
    # Line 1 is the batch metadata, then one offset per source; these queries have one.
    if len(entries) != 2 or not isinstance(entries[1], dict):
        return None
    return entries[1]


def _local_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    return os.path.abspath(unquote(parsed.path)) if parsed.scheme in ("file", "") else None


def _seen_files(root: Path) -> dict[str, int]:
    """``{local path: modification time in ms}`` of every file in a file-source checkpoint's
    log (the latest compacted file and the batches after it)."""
    source_log = _batch_files(root / "sources" / "0")
    seen: dict[str, int] = {}
    latest_compact = max((i for i, p in source_log.items() if p.suffix == ".compact"), default=-1)
    for batch, path in sorted(source_log.items()):
        if batch >= latest_compact:
            for entry in _log_lines(path):
                local = _local_path(entry["path"])
                if local is not None:
                    seen[local] = int(entry["timestamp"])
    return seen


def files_read(checkpoint: str) -> dict[str, int]:
    """``{local path: modification time in ms}`` of every file the file-source query of
    ``checkpoint`` has read (or planned to read in a batch not yet committed: a rerun reads
    those again, unchanged). Empty when the checkpoint has no file log (nothing read yet) or a
    format not understood: then every file counts as unread.
    """
    try:
        return _seen_files(Path(checkpoint))
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def files_read_in(read: Mapping[str, int], folder: Path) -> dict[str, int]:
    """``{file name: modification time in ms}`` of the files of ``read`` (:func:`files_read`)
    that are in ``folder``."""
    here = os.path.abspath(folder)
    return {os.path.basename(p): ms for p, ms in read.items() if os.path.dirname(p) == here}


def folders_read_besides(read: Mapping[str, int], folder: Path) -> list[str]:
    """Names of the folders other than ``folder`` (by name) with files in ``read``
    (:func:`files_read`): another dataset's landing folder."""
    return sorted({os.path.basename(os.path.dirname(p)) for p in read} - {folder.name})


def file_source_caught_up(checkpoint: str, folder: Path) -> bool:
    """True when the file-source query of ``checkpoint`` has committed every file in ``folder``.

    Reads the checkpoint as Spark wrote it: the last planned batch must be committed, and
    every file Spark would list in ``folder`` (not hidden, not ``_``-prefixed) must be in the
    source's file log up to that batch. Then a run would find nothing new, so it can be
    skipped. False on any doubt (no checkpoint, a sub-folder, an unknown format).
    """
    root = Path(checkpoint)
    try:
        offset = _committed_offset(root)
        if offset is None or not isinstance(offset.get("logOffset"), int):
            return False
        source_log = _batch_files(root / "sources" / "0")
        if not source_log or max(source_log) != offset["logOffset"]:
            return False
        seen = _seen_files(root)
        listed = [p for p in folder.iterdir() if not p.name.startswith((".", "_"))]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if any(not p.is_file() for p in listed):
        return False
    return all(os.path.abspath(p) in seen for p in listed)


def delta_source_caught_up(checkpoint: str, table: Path) -> bool:
    """True when the Delta-source query of ``checkpoint`` has read every version of ``table``.

    ``table`` is a local Delta table folder. The last planned batch must be committed and its
    offset must point past the table's latest commit (``reservoirVersion`` above it, at the
    start of that version), on the same table (``reservoirId``). False on any doubt.
    """
    try:
        offset = _committed_offset(Path(checkpoint))
        versions = [int(p.stem) for p in (table / "_delta_log").glob("*.json") if p.stem.isdigit()]
        if offset is None or not versions:
            return False
        table_id = _delta_table_id(table, min(versions), max(versions))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (
        offset.get("reservoirId") == table_id
        and offset.get("index") == -1
        and offset.get("isStartingVersion") is False
        and isinstance(offset.get("reservoirVersion"), int)
        and offset["reservoirVersion"] > max(versions)
    )


def _delta_table_id(table: Path, first_version: int, latest_version: int) -> str | None:
    """The table id: from the latest checksum file, else the first retained commit."""
    checksum = table / "_delta_log" / f"{latest_version:020d}.crc"
    if checksum.is_file():
        return str(json.loads(checksum.read_text(encoding="utf-8"))["metadata"]["id"])
    commit = table / "_delta_log" / f"{first_version:020d}.json"
    for line in commit.read_text(encoding="utf-8").splitlines():
        action = json.loads(line)
        if "metaData" in action:
            return str(action["metaData"]["id"])
    return None
