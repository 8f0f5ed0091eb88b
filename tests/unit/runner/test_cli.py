"""``demand-forecasting run``: progress, summary table, run record and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_support import write_bundle

from demand_forecasting.cli import main as cli_main

PKG = "package_name: runner_fixture_tasks"
JOBS = f"""\
resources:
  jobs:
    monthly:
      parameters: [{{name: month, default: "2024-01"}}]
      tasks:
        - task_key: ingest
          python_wheel_task: {{{PKG}, entry_point: set_values, parameters: ['--rows=10']}}
        - task_key: train
          depends_on: [{{task_key: ingest}}]
          timeout_seconds: 3600
          python_wheel_task:
            {PKG}
            entry_point: fail
            parameters: ["--month={{{{job.parameters.month}}}}"]
        - task_key: score
          depends_on: [{{task_key: train}}]
          python_wheel_task: {{{PKG}, entry_point: record}}
"""


def test_run_prints_progress_and_summary_and_writes_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(tmp_path / "state"))
    root = write_bundle(tmp_path / "bundle", JOBS)

    code = cli_main(["run", "monthly", "--bundle-root", str(root), "--param", "month=2024-02"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "[start] ingest (python_wheel_task)" in out
    assert "[FAILED] train at " in out
    assert "[skipped] score: run_if ALL_SUCCESS not met (failed upstream: train)" in out
    summary = out[out.index("task    status") :]
    assert "ingest  SUCCESS" in summary
    assert "score   UPSTREAM_FAILED  -" in summary
    assert "job 'monthly' FAILED" in summary
    assert "task 'train' failed: RuntimeError: boom: --month=2024-02" in err

    records = list((tmp_path / "state" / "runs").glob("*_monthly_*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["job_key"] == "monthly"
    assert record["target"] == "dev"
    assert record["parameters"] == {"month": "2024-02"}
    assert record["state"] == "FAILED"
    tasks = {t["task_key"]: t for t in record["tasks"]}
    assert tasks["ingest"]["values"] == {"rows": 10}
    assert tasks["train"]["error"] == "RuntimeError: boom: --month=2024-02"
    assert tasks["train"]["note"] == "timeout_seconds=3600 not enforced locally"
    assert tasks["score"]["status"] == "UPSTREAM_FAILED"


def test_successful_run_exits_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(tmp_path / "state"))
    root = write_bundle(
        tmp_path / "bundle", JOBS.replace("entry_point: fail", "entry_point: record")
    )

    assert cli_main(["run", "monthly", "-t", "prod", "--bundle-root", str(root)]) == 0
    assert "job 'monthly' SUCCESS" in capsys.readouterr().out


def test_ctrl_c_ends_the_run_with_a_short_message_and_exit_code_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(tmp_path / "state"))
    jobs = f"""\
    resources:
      jobs:
        monthly:
          tasks:
            - task_key: train
              max_retries: 1
              python_wheel_task: {{{PKG}, entry_point: interrupted}}
    """
    root = write_bundle(tmp_path / "bundle", jobs)

    code = cli_main(["run", "monthly", "--bundle-root", str(root)])

    _, err = capsys.readouterr()
    assert code == 130
    assert "interrupted: job 'monthly' stopped" in err
    assert "Rerun the same command" in err
