"""Incremental, exactly-once steps: a stream with a checkpoint, run once over what is new.

Every stage of the pipeline reads its input as a stream (landing files, then Delta tables),
processes each micro-batch with a function of ``(batch, batch_id)`` and stops when the input
is exhausted (``trigger(availableNow=True)``). The checkpoint remembers what was processed,
so a rerun with nothing new runs no batch and writes nothing. A batch function writes with
:func:`append_once`, which Delta skips when the same query already committed that batch id
(a batch replayed after a crash is not written twice).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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

    query = (
        source.writeStream.queryName(name)
        .foreachBatch(guarded)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    failure: StreamingQueryException | None = None
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


def checkpoint_query_id(checkpoint: str) -> str:
    """The id of the query that owns ``checkpoint`` (stable across restarts of that query).

    Spark writes it to ``<checkpoint>/metadata`` when the query first starts. A new
    checkpoint gets a new id, so its batch ids never collide with an old one's in Delta.
    """
    metadata = Path(checkpoint) / "metadata"
    return str(json.loads(metadata.read_text(encoding="utf-8").splitlines()[0])["id"])


def append_once(tables: TableStore, df: DataFrame, name: str, app_id: str, batch_id: int) -> None:
    """Append ``df`` to table ``name`` unless batch ``batch_id`` of ``app_id`` is already in it.

    Delta's idempotent writes (``txnAppId`` + ``txnVersion``) make a replayed micro-batch a
    no-op, which with the checkpoint gives exactly-once.
    """
    tables.write(df, name, mode="append", txnAppId=app_id, txnVersion=str(batch_id))
