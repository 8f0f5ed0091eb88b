"""The run context: everything a step needs from the platform, built once and passed in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from demand_forecasting import names
from demand_forecasting.platform.detect import on_databricks as detect_databricks
from demand_forecasting.platform.handover import HandOver
from demand_forecasting.platform.mlflow_setup import (
    DATABRICKS_STORE,
    MlflowStore,
    configure_mlflow,
    local_store,
)
from demand_forecasting.platform.paths import LocalLayout, default_state_dir, volume_path
from demand_forecasting.platform.spark import get_spark
from demand_forecasting.platform.tables import (
    LocalDeltaTables,
    TableName,
    TableStore,
    UnityCatalogTables,
)
from demand_forecasting.platform.task_values import TaskValues, current_task_values

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(timezone.utc)


@dataclass
class RunContext:
    """What step code gets from the platform. Steps never ask where they run."""

    spark: SparkSession
    tables: TableStore
    mlflow: MlflowClient
    mlflow_store: MlflowStore
    task_values: TaskValues
    #: Values that grow with the estate, passed between the job run's tasks (a Delta table).
    handover: HandOver
    target: str
    catalog: str
    schema: str
    on_databricks: bool
    #: Local state folder (None on Databricks, where state lives in Unity Catalog).
    state_dir: Path | None
    clock: Callable[[], datetime] = field(default=utc_now)

    def table(self, name: str) -> str:
        """The full name of a table of this run's schema: ``catalog.schema.<name>``."""
        return str(TableName(self.catalog, self.schema, name))

    def volume_path(self, volume: str, *parts: str) -> str:
        """A path inside a Unity Catalog volume of this run's schema.

        ``/Volumes/<catalog>/<schema>/<volume>/...`` on Databricks; the same layout under
        the local state folder's ``volumes/`` otherwise.
        """
        return volume_path(self.catalog, self.schema, volume, *parts, state_dir=self.state_dir)

    def first_local_load(self, name: str) -> bool:
        """Whether this local run creates table ``name`` (a pass over the whole history).

        Locally the data tasks turn generated code on for that pass
        (:func:`demand_forecasting.platform.spark.generated_code`): it pays off there, not for a
        month's increment. Always False on Databricks, whose session is left as it is.
        """
        return not self.on_databricks and not self.tables.exists(self.table(name))

    def large_local_table(self, name: str, min_bytes: int) -> bool:
        """Whether table ``name`` is a local Delta folder whose data files exceed ``min_bytes``.

        A cheap size test (no Spark query) for tasks that switch generated code on for big
        local tables, as :meth:`first_local_load` does for first loads. Files of older
        versions not yet vacuumed count too. Always False on Databricks.
        """
        folder = self.tables.local_folder(self.table(name))
        if self.on_databricks or folder is None or not folder.is_dir():
            return False
        total = 0
        for data_file in folder.rglob("*.parquet"):
            total += data_file.stat().st_size
            if total > min_bytes:
                return True
        return False


def build_context(
    target: str,
    catalog: str,
    schema: str,
    *,
    state_dir: Path | None = None,
    clock: Callable[[], datetime] = utc_now,
    job_run_id: str | None = None,
) -> RunContext:
    """Build the context for ``target`` on whatever platform this process runs on.

    Args:
        target: bundle target (``dev``, ``test``, ``prod``), recorded on runs and models.
        catalog: Unity Catalog catalog of every table this run reads and writes.
        schema: schema within ``catalog``.
        state_dir: local state folder (default: ``.local`` beside ``databricks.yml`` or
            ``$DEMAND_FORECASTING_HOME``); ignored on Databricks.
        clock: the time source (tests pin it).
        job_run_id: the job run the task belongs to (``{{job.run_id}}``): it keys the
            hand-over table; None for a task run by hand (the hand-over stays in memory).
    """
    databricks = detect_databricks()
    local_dir = None if databricks else (state_dir or default_state_dir()).resolve()
    layout = LocalLayout(local_dir) if local_dir is not None else None
    # MLflow first: its client imports and opens the store (~2 s of Python), which overlaps
    # the JVM's boot when the runner started Spark in the background; get_spark waits after.
    store = DATABRICKS_STORE if layout is None else local_store(layout.mlflow)
    client = configure_mlflow(store)
    if layout is None:
        spark = get_spark(on_databricks=True)
        tables: TableStore = UnityCatalogTables(spark)
    else:
        spark = get_spark(on_databricks=False, scratch_dir=layout.spark)
        tables = LocalDeltaTables(spark, layout.warehouse)
    return RunContext(
        spark=spark,
        tables=tables,
        mlflow=client,
        mlflow_store=store,
        task_values=current_task_values(databricks),
        handover=HandOver(
            tables, str(TableName(catalog, schema, names.HANDOVER)), job_run_id, clock
        ),
        target=target,
        catalog=catalog,
        schema=schema,
        on_databricks=databricks,
        state_dir=local_dir,
        clock=clock,
    )
