"""The SQL that the Unity Catalog table store sends, checked without Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from demand_forecasting.platform.tables import LocalDeltaTables, UnityCatalogTables


class _RecordingSession:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def sql(self, statement: str) -> None:
        self.statements.append(statement)


def test_retained_history_sets_file_and_log_retention_together() -> None:
    session = _RecordingSession()
    UnityCatalogTables(session).retain_history("prod.demand_forecasting.gold_features", 730)  # type: ignore[arg-type]
    (statement,) = session.statements
    assert statement.startswith(
        "ALTER TABLE `prod`.`demand_forecasting`.`gold_features` SET TBLPROPERTIES ("
    )
    # Time travel needs both the data files (VACUUM) and the log entries of a version.
    assert "'delta.deletedFileRetentionDuration' = 'interval 730 days'" in statement
    assert "'delta.logRetentionDuration' = 'interval 730 days'" in statement


def test_retained_history_is_never_shorter_than_delta_s_default() -> None:
    session = _RecordingSession()
    with pytest.raises(ValueError, match="at least 7 days"):
        UnityCatalogTables(session).retain_history("a.b.c", 3)  # type: ignore[arg-type]
    assert session.statements == []


def test_local_tables_need_no_retention(tmp_path: Path) -> None:
    session = _RecordingSession()
    LocalDeltaTables(session, tmp_path).retain_history("a.b.c", 730)  # type: ignore[arg-type]
    assert session.statements == []
