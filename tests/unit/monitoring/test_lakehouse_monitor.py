"""The forecast table's Lakehouse monitor: created by the monitor task, never on deploy.

databricks-sdk's real ``QualityMonitorsAPI`` builds every request here; only the HTTP layer
under it is a fake (a workspace cannot exist in a test): it answers as Unity Catalog does,
404 for a table or monitor that does not exist. No WorkspaceClient is ever built.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from databricks.sdk.errors import ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.catalog import QualityMonitorsAPI

from demand_forecasting.monitoring import monitor
from demand_forecasting.monitoring.lakehouse_monitor import (
    ForecastMonitorSpec,
    LakehouseMonitorError,
    ensure_forecast_monitor,
)
from demand_forecasting.runner import load_bundle
from demand_forecasting.task import base_parser

REPO_ROOT = Path(__file__).resolve().parents[3]
TABLE = "prod.demand_forecasting.gold_forecasts"
PREFIX = "/api/2.1/unity-catalog/tables/"
ASSETS = "/Workspace/Users/sp/.bundle/demand-forecasting/prod/monitoring/gold_forecasts"


class FakeUnityCatalog:
    """The HTTP layer of a workspace (``ApiClient.do``): tables, and monitors made on them."""

    def __init__(self, tables: set[str]) -> None:
        self._cfg = SimpleNamespace(workspace_id=None)
        self.tables = tables
        self.monitors: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []

    def do(
        self,
        method: str,
        path: str | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        assert path is not None and path.startswith(PREFIX) and path.endswith("/monitor"), path
        self.requests.append((method, path, body))
        table = path[len(PREFIX) : -len("/monitor")]
        if table not in self.tables:
            raise ResourceDoesNotExist(f"Table '{table}' does not exist.")
        if method == "GET":
            if table not in self.monitors:
                raise ResourceDoesNotExist(f"Monitor for table '{table}' does not exist.")
            return self.monitors[table]
        assert method == "POST", method
        if table in self.monitors:
            raise ResourceAlreadyExists(f"Monitor for table '{table}' already exists.")
        self.monitors[table] = {**(body or {}), "table_name": table, "monitor_version": 1}
        return self.monitors[table]


def _spec(**changes: Any) -> ForecastMonitorSpec:
    values: dict[str, Any] = {
        "table_name": TABLE,
        "output_schema_name": "prod.demand_forecasting",
        "assets_dir": ASSETS,
        "alert_emails": ("alerts@contoso.com",),
        "pause_status": "UNPAUSED",
    }
    return ForecastMonitorSpec(**(values | changes))


def test_the_monitor_is_created_with_the_settings_the_bundle_resource_had() -> None:
    workspace = FakeUnityCatalog({TABLE})
    assert ensure_forecast_monitor(QualityMonitorsAPI(workspace), _spec()) is True
    (method, _, body), *rest = [r for r in workspace.requests if r[0] == "POST"]
    assert (method, rest) == ("POST", [])
    # resources/monitoring.yml declared exactly this (with the target's pause status).
    assert body == {
        "output_schema_name": "prod.demand_forecasting",
        "assets_dir": _spec().assets_dir,
        "inference_log": {
            "problem_type": "PROBLEM_TYPE_REGRESSION",
            "prediction_col": "forecast",
            "model_id_col": "model_id",
            "timestamp_col": "run_timestamp",
            "granularities": ["1 month"],
        },
        "slicing_exprs": ["segment", "horizon"],
        "schedule": {
            "quartz_cron_expression": "0 0 7 3 * ?",
            "timezone_id": "UTC",
            "pause_status": "UNPAUSED",
        },
        "notifications": {"on_failure": {"email_addresses": ["alerts@contoso.com"]}},
    }


def test_an_existing_monitor_is_left_as_it_is() -> None:
    workspace = FakeUnityCatalog({TABLE})
    monitors = QualityMonitorsAPI(workspace)
    assert ensure_forecast_monitor(monitors, _spec()) is True
    assert ensure_forecast_monitor(monitors, _spec(pause_status="PAUSED")) is False
    assert [m for m, _, _ in workspace.requests] == ["GET", "POST", "GET"]


def test_a_missing_table_fails_naming_it_and_what_to_check() -> None:
    with pytest.raises(LakehouseMonitorError) as error:
        ensure_forecast_monitor(QualityMonitorsAPI(FakeUnityCatalog(set())), _spec())
    message = str(error.value)
    assert f"could not create the Lakehouse monitor of {TABLE}" in message
    assert "does not exist" in message and "must own the table" in message


def test_a_bad_pause_status_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="quality_monitor_pause_status"):
        _spec(pause_status="ON")
    with pytest.raises(ValueError, match="quality_monitor_pause_status"):
        monitor.MonitorConfig(monitor_pause_status="paused ")


def _ctx(on_databricks: bool) -> Any:
    return SimpleNamespace(
        on_databricks=on_databricks,
        catalog="prod",
        schema="demand_forecasting",
        table=lambda name: f"prod.demand_forecasting.{name}",
    )


def test_a_local_run_builds_no_workspace_client() -> None:
    def no_client() -> QualityMonitorsAPI:
        raise AssertionError("a WorkspaceClient was asked for off Databricks")

    config = monitor.MonitorConfig(monitor_assets_dir="/Workspace/Users/me/x")
    assert monitor.ensure_lakehouse_monitor(_ctx(False), config, no_client) is None


def test_on_databricks_the_task_creates_the_missing_monitor_from_its_options() -> None:
    parser = base_parser("monitor", "")
    monitor.add_arguments(parser)
    args = parser.parse_args(
        [
            *("--catalog", "prod", "--schema", "demand_forecasting", "--target", "prod"),
            *("--quality-monitor-assets-dir", _spec().assets_dir),
            *("--quality-monitor-pause-status", "unpaused", "--alert-email", "a@contoso.com"),
        ]
    )
    config = monitor.make_config(args)
    workspace = FakeUnityCatalog({TABLE})
    created = monitor.ensure_lakehouse_monitor(
        _ctx(True), config, lambda: QualityMonitorsAPI(workspace)
    )
    assert created is True
    body = workspace.monitors[TABLE]
    assert body["assets_dir"] == _spec().assets_dir
    assert body["schedule"]["pause_status"] == "UNPAUSED"
    assert body["notifications"] == {"on_failure": {"email_addresses": ["a@contoso.com"]}}


def test_the_bundle_leaves_the_monitor_to_the_monitor_task() -> None:
    """A deploy into a new schema must not need gold_forecasts (the first run makes it)."""
    for target in ("dev", "test", "prod"):
        bundle = load_bundle(
            REPO_ROOT,
            target,
            environ={"BUNDLE_VAR_alert_email": "alerts@contoso.com"},
            user_name="someone@contoso.com",
        )
        assert "quality_monitors" not in bundle.config["resources"], target
        (task,) = [t for t in bundle.jobs["monthly"]["tasks"] if t["task_key"] == "monitor"]
        parameters = task["python_wheel_task"]["parameters"]
        assets = parameters[parameters.index("--quality-monitor-assets-dir") + 1]
        root = bundle.config["workspace"]["root_path"]
        assert assets == f"{root}/monitoring/gold_forecasts", target
        pause = parameters[parameters.index("--quality-monitor-pause-status") + 1]
        assert pause == ("UNPAUSED" if target == "prod" else "PAUSED"), target
