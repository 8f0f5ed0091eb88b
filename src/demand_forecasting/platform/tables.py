"""Tables by their Unity Catalog name, on Unity Catalog or as local Delta folders.

Step code names every table ``catalog.schema.table`` and goes through a :class:`TableStore`;
only this module knows that locally the table is a Delta folder under the warehouse.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
#: Delta's default ``delta.deletedFileRetentionDuration``: no table keeps less history.
MIN_RETENTION_DAYS = 7
#: The table properties that keep a Delta table's history: its data files and its log.
DELETED_FILE_RETENTION = "delta.deletedFileRetentionDuration"
LOG_RETENTION = "delta.logRetentionDuration"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableName:
    """A three-level Unity Catalog name."""

    catalog: str
    schema: str
    table: str

    @classmethod
    def parse(cls, name: str) -> TableName:
        """Parse ``catalog.schema.table``.

        Raises:
            ValueError: the name is not three dot-separated identifiers.
        """
        parts = name.split(".")
        if len(parts) != 3 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ValueError(
                f"table name {name!r} is not a Unity Catalog name 'catalog.schema.table' "
                "(three identifiers of letters, digits, '_' or '-', separated by dots)"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"


class TableStore(ABC):
    """Read, write and version Delta tables by Unity Catalog name."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    @abstractmethod
    def sql_ref(self, name: str) -> str:
        """How SQL addresses the table (`` delta.`/path` `` locally, the name on UC)."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """True when the table exists."""

    @abstractmethod
    def read(self, name: str, version: int | None = None) -> DataFrame:
        """The table as a DataFrame, optionally as of a Delta version (time travel)."""

    @abstractmethod
    def delta_table(self, name: str) -> DeltaTable:
        """The :class:`delta.tables.DeltaTable` handle (for MERGE, history)."""

    @abstractmethod
    def write(
        self,
        df: DataFrame,
        name: str,
        mode: str = "append",
        partition_by: Sequence[str] = (),
        **options: Any,
    ) -> None:
        """Write ``df`` to the table in Delta format (``options``: e.g. replaceWhere),
        partitioned by ``partition_by`` when this write creates (or overwrites) it."""

    @abstractmethod
    def start_stream(self, writer: DataStreamWriter, name: str) -> StreamingQuery:
        """Start a streaming write of ``writer`` into the table."""

    @abstractmethod
    def read_stream(self, name: str) -> DataFrame:
        """The table as a streaming source (new appends since a query's checkpoint)."""

    def declare_primary_key(self, name: str, columns: tuple[str, ...]) -> None:  # noqa: B027
        """Declare ``columns`` the table's primary key where the catalog supports it.

        Unity Catalog registers a Delta table with a primary key as a feature table; local
        Delta has no primary keys, so locally this is a no-op (uniqueness is tested instead).
        """

    def properties(self, name: str) -> dict[str, str]:
        """The table's properties (``TBLPROPERTIES``), from ``DESCRIBE DETAIL``."""
        row = self.spark.sql(f"DESCRIBE DETAIL {self.sql_ref(name)}").select("properties").first()
        return dict(row[0] or {}) if row is not None else {}

    def converge_properties(self, name: str, wanted: Mapping[str, str]) -> dict[str, str]:
        """Give the table the properties ``wanted``; return those that were different.

        A property set when a table was created stays as that release set it: a table created
        by an older release (or by hand) keeps its old values. This compares the table's
        properties with ``wanted`` (one ``DESCRIBE DETAIL``) and, when any differs, sets all
        of ``wanted`` in one ``ALTER TABLE ... SET TBLPROPERTIES`` (one commit). All, not only
        those that differ: Delta checks related properties against each other within the
        statement (``delta.deletedFileRetentionDuration`` set alone to 730 days is refused,
        ``UNSUPPORTED_TABLE_CHANGE``, even when the table's log retention is already 730
        days). When all match it writes nothing, so it is safe on every run.
        """
        current = self.properties(name)
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        if changed:
            assignments = ", ".join(f"'{key}' = '{value}'" for key, value in wanted.items())
            self.spark.sql(f"ALTER TABLE {self.sql_ref(name)} SET TBLPROPERTIES ({assignments})")
            for key, value in changed.items():
                log.info("%s: %s = %r (was %r)", name, key, value, current.get(key))
        return changed

    def retain_history(self, name: str, days: int) -> dict[str, str]:
        """Keep ``days`` of the table's history readable by time travel; return what changed.

        Unity Catalog's predictive optimization vacuums managed tables on its own, removing
        data files that no version of the last ``delta.deletedFileRetentionDuration`` (7 days
        by default) still needs, and the log keeps ``delta.logRetentionDuration`` (30 days).
        Time travel needs both, so both are set to ``days`` (:meth:`converge_properties`:
        also on a table an older release created with other values). Locally nothing
        vacuums, but the same properties are kept, so that the same code runs and is tested.

        Raises:
            ValueError: ``days`` is under Delta's default file retention (7 days).
        """
        if days < MIN_RETENTION_DAYS:
            raise ValueError(
                f"retain_history({name!r}, {days}): keep at least {MIN_RETENTION_DAYS} days "
                "(Delta's default file retention); raise the number of days"
            )
        interval = f"interval {int(days)} days"
        return self.converge_properties(
            name, {DELETED_FILE_RETENTION: interval, LOG_RETENTION: interval}
        )

    def local_folder(self, name: str) -> Path | None:
        """The table's folder when it is a local Delta folder (None on Unity Catalog)."""
        return None

    def version(self, name: str) -> int | None:
        """The table's latest Delta version, or None if it does not exist."""
        if not self.exists(name):
            return None
        row = self.delta_table(name).history(1).select("version").first()
        return int(row[0]) if row is not None else None

    def ensure_schema(self, catalog: str, schema: str) -> None:  # noqa: B027 - optional hook
        """Make sure the schema exists (locally a no-op: folders appear on write)."""


def delta_writer(
    df: DataFrame, mode: str, partition_by: Sequence[str], options: dict[str, Any]
) -> DataFrameWriter:
    """``df``'s Delta writer in ``mode`` with ``options``, partitioned when asked (only then:
    an empty partition list is not the same as none to Delta)."""
    writer = df.write.format("delta").mode(mode).options(**options)
    return writer.partitionBy(*partition_by) if partition_by else writer


class LocalDeltaTables(TableStore):
    """Tables as Delta folders ``<warehouse>/<catalog>/<schema>/<table>``."""

    def __init__(self, spark: SparkSession, warehouse: Path) -> None:
        super().__init__(spark)
        self.warehouse = warehouse

    def path(self, name: str) -> Path:
        """The local folder of a table."""
        parsed = TableName.parse(name)
        return self.warehouse / parsed.catalog / parsed.schema / parsed.table

    def local_folder(self, name: str) -> Path | None:
        return self.path(name)

    def sql_ref(self, name: str) -> str:
        return f"delta.`{self.path(name)}`"

    def exists(self, name: str) -> bool:
        return (self.path(name) / "_delta_log").is_dir()

    def read(self, name: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(str(self.path(name)))

    def delta_table(self, name: str) -> DeltaTable:
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, str(self.path(name)))

    def write(
        self,
        df: DataFrame,
        name: str,
        mode: str = "append",
        partition_by: Sequence[str] = (),
        **options: Any,
    ) -> None:
        delta_writer(df, mode, partition_by, options).save(str(self.path(name)))

    def start_stream(self, writer: DataStreamWriter, name: str) -> StreamingQuery:
        return writer.format("delta").start(str(self.path(name)))

    def read_stream(self, name: str) -> DataFrame:
        return self.spark.readStream.format("delta").load(str(self.path(name)))


class UnityCatalogTables(TableStore):
    """Managed Unity Catalog tables, addressed by name."""

    def sql_ref(self, name: str) -> str:
        parsed = TableName.parse(name)
        return f"`{parsed.catalog}`.`{parsed.schema}`.`{parsed.table}`"

    def exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(str(TableName.parse(name))))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(str(TableName.parse(name)))

    def delta_table(self, name: str) -> DeltaTable:
        from delta.tables import DeltaTable

        return DeltaTable.forName(self.spark, str(TableName.parse(name)))

    def write(
        self,
        df: DataFrame,
        name: str,
        mode: str = "append",
        partition_by: Sequence[str] = (),
        **options: Any,
    ) -> None:
        delta_writer(df, mode, partition_by, options).saveAsTable(str(TableName.parse(name)))

    def start_stream(self, writer: DataStreamWriter, name: str) -> StreamingQuery:
        return writer.toTable(str(TableName.parse(name)))

    def read_stream(self, name: str) -> DataFrame:
        return self.spark.readStream.table(str(TableName.parse(name)))

    def declare_primary_key(self, name: str, columns: tuple[str, ...]) -> None:
        """Set the key columns NOT NULL and add a ``<table>_pk`` constraint (once)."""
        ref = self.sql_ref(name)
        table = TableName.parse(name).table
        existing = self.spark.sql(
            f"SELECT 1 FROM `{TableName.parse(name).catalog}`.information_schema."
            f"table_constraints WHERE table_schema = '{TableName.parse(name).schema}' "
            f"AND table_name = '{table}' AND constraint_type = 'PRIMARY KEY'"
        )
        if existing.first() is not None:
            return
        for column in columns:
            self.spark.sql(f"ALTER TABLE {ref} ALTER COLUMN `{column}` SET NOT NULL")
        keys = ", ".join(f"`{c}`" for c in columns)
        self.spark.sql(f"ALTER TABLE {ref} ADD CONSTRAINT `{table}_pk` PRIMARY KEY ({keys})")

    def ensure_schema(self, catalog: str, schema: str) -> None:
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{catalog}`.`{schema}`")


#: Error conditions of a Delta commit that lost to a concurrent one (worth trying again):
#: on Spark Connect (serverless) the conflict arrives as a generic exception carrying them.
COMMIT_CONFLICT_CONDITIONS = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)


def is_commit_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is a Delta commit conflict (``ConcurrentAppendException``,
    ``ConcurrentDeleteReadException``, ... or a ``DELTA_CONCURRENT_*`` error condition): the
    table changed between this write's read and its commit, and the write changed nothing."""
    from delta import exceptions

    conflicts = (
        exceptions.ConcurrentAppendException,
        exceptions.ConcurrentDeleteReadException,
        exceptions.ConcurrentDeleteDeleteException,
        exceptions.ConcurrentTransactionException,
        exceptions.ConcurrentWriteException,
        exceptions.MetadataChangedException,
        exceptions.ProtocolChangedException,
    )
    if isinstance(exc, conflicts):
        return True
    condition = getattr(exc, "getCondition", None)
    text = str(condition() or "") if callable(condition) else ""
    return text.startswith(COMMIT_CONFLICT_CONDITIONS)
