"""approve / rollback act on the registry their target means, or refuse before opening one.

Off Databricks the context is the local sqlite registry; a non-dev target there is refused
(unless --local), because a person typing --target prod on a laptop means prod's models.
No Spark and no registry here: the context builder is replaced by one that records the call.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pytest

from demand_forecasting import cli
from demand_forecasting.models import approve, command_context, rollback
from demand_forecasting.platform.detect import DATABRICKS_RUNTIME_ENV

REPO = Path(__file__).resolve().parents[3]
CONTEXT = ["--catalog", "prod", "--schema", "demand_forecasting"]
COMMANDS = {
    "approve": ["approve", "--all", "--reason", "CAB-1"],
    "rollback": ["rollback", "nsw__food", "--reason", "bad forecasts"],
}


class ContextBuilt(Exception):
    """Raised by the stand-in builder: the command got as far as opening a registry."""


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        calls.append(args)
        raise ContextBuilt(args)

    monkeypatch.setattr(command_context, "build_context", record)
    return calls


@pytest.fixture
def laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABRICKS_RUNTIME_ENV, raising=False)


@pytest.fixture
def databricks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABRICKS_RUNTIME_ENV, "17.3")


@pytest.mark.usefixtures("laptop")
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("target", ["prod", "test"])
def test_off_databricks_a_shared_target_is_refused_before_a_registry_opens(
    command: str, target: str, built: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        code = cli.main([*COMMANDS[command], *CONTEXT, "--target", target])
    assert code == 1
    assert built == []
    message = caplog.text
    assert f"{command} --target {target}: this process is not on Databricks" in message
    assert "local registry" in message and "add --local" in message
    if command == "approve":
        assert "start the bundle's approve job" in message


@pytest.mark.usefixtures("laptop")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_off_databricks_local_says_the_local_registry_is_meant(
    command: str, built: list[Any]
) -> None:
    with pytest.raises(ContextBuilt):
        cli.main([*COMMANDS[command], *CONTEXT, "--target", "prod", "--local"])
    assert built == [("prod", "prod", "demand_forecasting")]


@pytest.mark.usefixtures("laptop")
def test_off_databricks_dev_uses_the_local_registry(built: list[Any]) -> None:
    with pytest.raises(ContextBuilt):
        cli.main([*COMMANDS["rollback"], "--catalog", "main", "--schema", "s"])
    assert built == [("dev", "main", "s")]


@pytest.mark.usefixtures("laptop")
def test_without_catalog_and_schema_the_targets_come_from_the_bundle(
    built: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(ContextBuilt):
        cli.main(COMMANDS["rollback"])
    assert built == [("dev", "dev", "demand_forecasting")]  # databricks.yml's dev target

    # Outside any bundle nothing is guessed: the command asks for both, opening nothing.
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR):
        code = cli.main(COMMANDS["rollback"])
    assert code != 0 and len(built) == 1
    assert "pass --catalog and --schema" in caplog.text


@pytest.mark.usefixtures("databricks")
def test_on_databricks_the_target_is_used_and_local_is_refused(
    built: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ContextBuilt):
        cli.main([*COMMANDS["approve"], *CONTEXT, "--target", "prod"])
    assert built == [("prod", "prod", "demand_forecasting")]
    with caplog.at_level(logging.ERROR):
        assert cli.main([*COMMANDS["approve"], *CONTEXT, "--target", "prod", "--local"]) == 1
    assert "there is no local registry; drop --local" in caplog.text
    assert len(built) == 1


def _task_args(**overrides: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    approve.add_task_arguments(parser)
    values = {"segments": "a,b", "reason": "CAB-1", "approver": "jane@contoso.com"} | overrides
    args = parser.parse_args([f"--{k}={v}" for k, v in values.items()])
    args.job_run_id = "42"
    return args


def test_the_approve_task_takes_its_job_parameters() -> None:
    config = approve.make_task_config(_task_args())
    assert config == approve.ApprovalConfig(
        segments=("a", "b"),
        reason="CAB-1",
        approver="jane@contoso.com",
        model_prefix="demand",
        job_run_id="42",
    )
    assert approve.make_task_config(_task_args(segments="all")).segments is None


@pytest.mark.parametrize("name", ["segments", "reason", "approver"])
def test_the_approve_task_refuses_an_empty_job_parameter(name: str) -> None:
    with pytest.raises(ValueError, match=f"job parameter '{name}' is empty; start the approve job"):
        approve.make_task_config(_task_args(**{name: " "}))


def test_the_approve_entry_point_fails_on_a_missing_parameter_before_spark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        approve.task_main([*CONTEXT, "--segments", "all", "--reason", "", "--approver", "x"])
    assert exit_info.value.code == 2
    assert "job parameter 'reason' is empty" in capsys.readouterr().err


def _rollback_args(**overrides: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    rollback.add_task_arguments(parser)
    values = {"segment": "a", "to-version": "", "reason": "INC-7", "actor": "jane@contoso.com"}
    args = parser.parse_args([f"--{k}={v}" for k, v in (values | overrides).items()])
    args.job_run_id = "43"
    return args


def test_the_rollback_task_takes_its_job_parameters() -> None:
    assert rollback.make_task_config(_rollback_args()) == rollback.RollbackConfig(
        segment="a",
        to_version=None,  # empty: the previous champion
        reason="INC-7",
        actor="jane@contoso.com",
        model_prefix="demand",
        job_run_id="43",
    )
    assert rollback.make_task_config(_rollback_args(**{"to-version": " 4 "})).to_version == "4"


@pytest.mark.parametrize("name", ["segment", "reason", "actor"])
def test_the_rollback_task_refuses_an_empty_job_parameter(name: str) -> None:
    with pytest.raises(ValueError, match=f"job parameter '{name}' is empty; start the rollback"):
        rollback.make_task_config(_rollback_args(**{name: " "}))
