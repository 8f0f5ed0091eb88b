"""The SQL that the Unity Catalog table store sends, checked without Spark."""

from __future__ import annotations

from typing import Any

from demand_forecasting.platform.tables import UnityCatalogTables


class _Detail:
    """What ``DESCRIBE DETAIL`` of a table with ``properties`` returns, as far as read."""

    def __init__(self, properties: dict[str, str]) -> None:
        self._properties = properties

    def select(self, *_columns: str) -> _Detail:
        return self

    def first(self) -> tuple[dict[str, str]]:
        return (self._properties,)


class _RecordingSession:
    def __init__(self, properties: dict[str, str]) -> None:
        self.properties = properties
        self.statements: list[str] = []

    def sql(self, statement: str) -> Any:
        self.statements.append(statement)
        return _Detail(self.properties) if statement.startswith("DESCRIBE DETAIL") else None


def test_retained_history_reads_then_sets_file_and_log_retention_by_uc_name() -> None:
    session = _RecordingSession({"delta.logRetentionDuration": "interval 30 days"})
    UnityCatalogTables(session).retain_history("prod.demand_forecasting.gold_features", 730)  # type: ignore[arg-type]
    describe, alter = session.statements
    assert describe == "DESCRIBE DETAIL `prod`.`demand_forecasting`.`gold_features`"
    assert alter.startswith(
        "ALTER TABLE `prod`.`demand_forecasting`.`gold_features` SET TBLPROPERTIES ("
    )
    # Time travel needs both the data files (VACUUM) and the log entries of a version.
    assert "'delta.deletedFileRetentionDuration' = 'interval 730 days'" in alter
    assert "'delta.logRetentionDuration' = 'interval 730 days'" in alter
