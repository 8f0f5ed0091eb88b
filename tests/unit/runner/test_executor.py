"""Running jobs: DAG order, conditions, run_if, task values, for_each, run_job, failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import runner_fixture_tasks
from runner_support import write_bundle

from demand_forecasting.runner import (
    BundleError,
    JobResultState,
    JobRunner,
    JobRunResult,
    TaskStatus,
    load_bundle,
)
from demand_forecasting.runner.executor import MAX_PARAMETER_BYTES

PKG = "package_name: runner_fixture_tasks"


def run(root: Path, job: str, **params: str) -> JobRunResult:
    runner = JobRunner(load_bundle(root), sleep=lambda _: None)
    return runner.run(job, params)


def statuses(result: JobRunResult) -> dict[str, str]:
    return {task.task_key: task.status.value for task in result.tasks}


def called() -> list[list[str]]:
    return [args for _, args in runner_fixture_tasks.CALLS]


def test_tasks_run_dependencies_first_in_a_stable_order(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: report
              depends_on: [{{task_key: left}}, {{task_key: right}}]
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [report]}}
            - task_key: right
              depends_on: [{{task_key: start}}]
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [right]}}
            - task_key: left
              depends_on: [{{task_key: start}}]
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [left]}}
            - task_key: start
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [start]}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    assert called() == [["start"], ["right"], ["left"], ["report"]]
    assert result.state is JobResultState.SUCCESS
    assert runner_fixture_tasks.CALLS[0][0] == "record"  # argv[0] is the entry point


CONDITION_JOB = f"""\
resources:
  jobs:
    j:
      parameters: [{{name: threshold, default: "2"}}]
      tasks:
        - task_key: drift
          python_wheel_task: {{{PKG}, entry_point: set_values, parameters: ["--breaches=3"]}}
        - task_key: retrain_needed
          depends_on: [{{task_key: drift}}]
          condition_task:
            op: GREATER_THAN
            left: "{{{{tasks.drift.values.breaches}}}}"
            right: "{{{{job.parameters.threshold}}}}"
        - task_key: train
          depends_on: [{{task_key: retrain_needed, outcome: "true"}}]
          python_wheel_task:
            {PKG}
            entry_point: record
            parameters: ["--breaches={{{{tasks.drift.values.breaches}}}}"]
        - task_key: keep_champion
          depends_on: [{{task_key: retrain_needed, outcome: "false"}}]
          python_wheel_task: {{{PKG}, entry_point: record, parameters: [keep]}}
        - task_key: score
          depends_on: [{{task_key: train}}, {{task_key: keep_champion}}]
          python_wheel_task: {{{PKG}, entry_point: record, parameters: [score]}}
"""


def test_condition_true_runs_its_branch_and_excludes_the_other(tmp_path: Path) -> None:
    result = run(write_bundle(tmp_path, CONDITION_JOB), "j")

    assert statuses(result) == {
        "drift": "SUCCESS",
        "retrain_needed": "SUCCESS",
        "train": "SUCCESS",
        "keep_champion": "EXCLUDED",
        "score": "SUCCESS",
    }
    assert called() == [["--breaches=3"], ["--breaches=3"], ["score"]]
    condition = result.tasks[1]
    assert condition.outcome == "true"
    assert result.tasks[0].values == {"breaches": 3}


def test_condition_false_with_param_override(tmp_path: Path) -> None:
    result = run(write_bundle(tmp_path, CONDITION_JOB), "j", threshold="5")

    assert statuses(result)["train"] == "EXCLUDED"
    assert statuses(result)["keep_champion"] == "SUCCESS"
    assert result.tasks[1].outcome == "false"
    assert result.parameters == {"threshold": "5"}
    assert called()[1:] == [["keep"], ["score"]]


def test_failing_task_fails_the_job_and_skips_downstream(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: ingest
              python_wheel_task: {{{PKG}, entry_point: fail, parameters: [--month=2024-01]}}
            - task_key: validate
              depends_on: [{{task_key: ingest}}]
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: notify
              depends_on: [{{task_key: ingest}}]
              run_if: AT_LEAST_ONE_FAILED
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [notify]}}
            - task_key: cleanup
              depends_on: [{{task_key: validate}}]
              run_if: ALL_DONE
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [cleanup]}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    assert statuses(result) == {
        "ingest": "FAILED",
        "validate": "UPSTREAM_FAILED",
        "notify": "SUCCESS",
        "cleanup": "SUCCESS",
    }
    # validate is upstream-failed and notify a leaf that succeeded; cleanup (a leaf) ran
    assert result.state is JobResultState.SUCCESS_WITH_FAILURES
    ingest = result.tasks[0]
    assert ingest.error == "RuntimeError: boom: --month=2024-01"
    assert "second line of the message" in (ingest.traceback or "")
    assert [t.task_key for t in result.failed_tasks] == ["ingest"]


def test_bad_input_is_reported_by_its_message_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: ingest
              python_wheel_task: {{{PKG}, entry_point: reject_input}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    assert result.tasks[0].error == (
        "BadLandingFile: landing file x.csv is blank (rule: file_not_blank). Replace it."
    )
    assert result.tasks[0].traceback  # kept in the run record
    failures = [r for r in caplog.records if "task ingest failed" in r.getMessage()]
    assert failures and all(r.exc_info is None for r in failures)
    assert "Traceback" not in caplog.text


def test_failure_handlers_are_excluded_when_nothing_fails(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: a
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: on_failure
              depends_on: [{{task_key: a}}]
              run_if: AT_LEAST_ONE_FAILED
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [alert]}}
            - task_key: after_handler
              depends_on: [{{task_key: on_failure}}]
              python_wheel_task: {{{PKG}, entry_point: record, parameters: [after]}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    assert statuses(result) == {
        "a": "SUCCESS",
        "on_failure": "EXCLUDED",
        "after_handler": "EXCLUDED",
    }
    assert result.state is JobResultState.SUCCESS


def test_exit_code_is_a_failure_and_retries_recover(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: flaky
              max_retries: 1
              python_wheel_task: {{{PKG}, entry_point: flaky, parameters: [--name=x]}}
            - task_key: exits
              depends_on: [{{task_key: flaky}}]
              python_wheel_task: {{{PKG}, entry_point: exit_nonzero}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    flaky, exits = result.tasks
    assert (flaky.status, flaky.attempts) == (TaskStatus.SUCCESS, 2)
    assert exits.status is TaskStatus.FAILED
    assert exits.error == "TaskFailure: exited with code 3"
    assert result.state is JobResultState.FAILED


def test_ctrl_c_stops_the_run_even_when_a_library_wrapped_the_interrupt(tmp_path: Path) -> None:
    # Ctrl-C during train's toPandas came back as a Py4JJavaError; the runner retried train
    # and went on with the job instead of stopping.
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: train
              max_retries: 1
              python_wheel_task: {{{PKG}, entry_point: interrupted}}
            - task_key: after
              depends_on: [{{task_key: train}}]
              run_if: ALL_DONE
              python_wheel_task: {{{PKG}, entry_point: record}}
    """
    with pytest.raises(KeyboardInterrupt):
        run(write_bundle(tmp_path, jobs), "j")

    assert [name for name, _ in runner_fixture_tasks.CALLS] == ["interrupted"]


def test_for_each_runs_once_per_item_of_a_task_value_list(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: drift
              python_wheel_task:
                {PKG}
                entry_point: set_values
                parameters: ['--segments=["food", "cafes"]']
            - task_key: train_segments
              depends_on: [{{task_key: drift}}]
              for_each_task:
                inputs: "{{{{tasks.drift.values.segments}}}}"
                concurrency: 4
                task:
                  task_key: train_segment
                  python_wheel_task:
                    {PKG}
                    entry_point: record
                    named_parameters: {{segment: "{{{{input}}}}", run: "{{{{job.run_id}}}}"}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    loop = result.tasks[1]
    assert loop.status is TaskStatus.SUCCESS
    assert [it.input for it in loop.iterations] == ["food", "cafes"]
    assert [args[0] for args in called()[1:]] == ["--segment=food", "--segment=cafes"]
    assert called()[1][1] == f"--run={result.run_id}"
    assert "run sequentially" in loop.note


def test_for_each_fails_when_an_iteration_fails(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: each
              for_each_task:
                inputs: '[{{"m": 1}}, {{"m": 2}}]'
                task:
                  task_key: one
                  python_wheel_task: {{{PKG}, entry_point: fail, parameters: ["{{{{input.m}}}}"]}}
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    each = result.tasks[0]
    assert each.status is TaskStatus.FAILED
    assert each.error == "2 of 2 iterations failed; first: [0] RuntimeError: boom: 1"


def test_run_job_task_runs_the_other_job_with_its_parameters(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        monthly:
          parameters: [{{name: month, default: "2024-01"}}]
          tasks:
            - task_key: full_retrain
              run_job_task:
                job_id: ${{resources.jobs.training.id}}
                job_parameters: {{segments: all}}
        training:
          parameters: [{{name: segments, default: none}}, {{name: month, default: "?"}}]
          tasks:
            - task_key: fit
              python_wheel_task:
                {PKG}
                entry_point: set_values
                parameters:
                  - '--seen="{{{{job.parameters.segments}}}}/{{{{job.parameters.month}}}}"'
    """
    result = run(write_bundle(tmp_path, jobs), "monthly")

    child = result.tasks[0].child
    assert child is not None and child.job_key == "training"
    assert child.parameters == {"segments": "all", "month": "2024-01"}  # month pushed down
    assert child.tasks[0].values == {"seen": "all/2024-01"}
    assert result.state is JobResultState.SUCCESS


def test_task_values_that_are_not_set_fail_the_task(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: a
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: b
              depends_on: [{{task_key: a}}]
              python_wheel_task:
                {PKG}
                entry_point: record
                parameters: ["{{{{tasks.a.values.missing}}}}"]
    """
    result = run(write_bundle(tmp_path, jobs), "j")

    assert result.tasks[1].status is TaskStatus.FAILED
    assert "task 'a' (success) did not set task value 'missing'" in (result.tasks[1].error or "")


def test_a_wheel_task_whose_parameters_exceed_databricks_limit_fails_before_it_runs(
    tmp_path: Path,
) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          parameters: [{{name: segments, default: all}}]
          tasks:
            - task_key: train
              python_wheel_task:
                {PKG}
                entry_point: record
                parameters: ["--segments", "{{{{job.parameters.segments}}}}"]
    """
    root = write_bundle(tmp_path, jobs)
    # 1,500 segment names as one parameter: ~60 KB, Databricks takes 10,000 bytes.
    estate = ",".join(f"region_{i % 40:02d}__category_{i:05d}" for i in range(1_500))
    fits = estate[: MAX_PARAMETER_BYTES - 100]

    refused = run(root, "j", segments=estate)
    accepted = run(root, "j", segments=fits)

    assert refused.tasks[0].status is TaskStatus.FAILED
    error = refused.tasks[0].error or ""
    assert "task train: its resolved parameters are" in error
    assert "Databricks accepts 10,000" in error and "hand-over table" in error
    assert accepted.tasks[0].status is TaskStatus.SUCCESS
    assert called() == [["--segments", fits]]  # the refused one never started


def test_unknown_param_is_refused_before_running(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, CONDITION_JOB)

    with pytest.raises(BundleError, match="--param threshhold: not a parameter of this job"):
        run(root, "j", threshhold="1")
    assert called() == []


WARM_JOBS = f"""\
resources:
  jobs:
    ours:
      tasks:
        - task_key: a
          for_each_task:
            inputs: '[1]'
            task:
              task_key: a_item
              python_wheel_task: {{package_name: demand-forecasting, entry_point: df-ingest}}
    theirs:
      tasks:
        - task_key: a
          python_wheel_task: {{{PKG}, entry_point: record}}
"""


def test_warm_start_boots_spark_only_for_jobs_of_this_package_and_the_run_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from demand_forecasting.platform import spark
    from demand_forecasting.runner.executor import PACKAGE, run_job, runs_package_tasks

    root = write_bundle(tmp_path / "bundle", WARM_JOBS)
    bundle = load_bundle(root)
    assert runs_package_tasks(bundle.job("ours"), PACKAGE)
    assert not runs_package_tasks(bundle.job("theirs"), PACKAGE)

    started: list[tuple[Path, bool]] = []
    finished = threading.Event()

    def start(scratch_dir: Path, python_daemon: bool = False) -> threading.Thread:
        started.append((scratch_dir, python_daemon))
        thread = threading.Thread(target=lambda: (time.sleep(0.5), finished.set()), daemon=True)
        thread.start()
        return thread

    monkeypatch.setattr(spark, "start_local_in_background", start)
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(tmp_path / "state"))

    def resolver(package: str, entry_point: str):  # type: ignore[no-untyped-def]
        return runner_fixture_tasks.record

    run_job(root, "theirs", warm_start=True, write_record=False)
    run_job(root, "ours", warm_start=False, resolver=resolver, write_record=False)
    assert started == []
    result = run_job(root, "ours", warm_start=True, resolver=resolver, write_record=False)
    assert result.state is JobResultState.SUCCESS
    # The folder the tasks' own contexts give Spark (LocalLayout(state).spark), and the Python
    # worker daemon started early too.
    assert started == [((tmp_path / "state" / "spark").resolve(), True)]
    # A job that ends in its first seconds does not leave the process to exit under the
    # Python worker daemon's start job (Spark then logs a ConnectException stack trace).
    assert finished.is_set()


RECORDED_JOBS = f"""
resources:
  jobs:
    steps:
      tasks:
        - task_key: first
          python_wheel_task: {{{PKG}, entry_point: record}}
        - task_key: second
          depends_on: [{{task_key: first}}]
          python_wheel_task: {{{PKG}, entry_point: peek}}
"""


def test_the_run_record_is_on_disk_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from demand_forecasting.runner.executor import run_job

    root = write_bundle(tmp_path / "bundle", RECORDED_JOBS)
    runs = tmp_path / "runs"
    seen: list[dict[str, object]] = []

    def peek() -> None:
        # What a run killed here (SIGKILL, out of memory) would leave behind.
        (record,) = runs.glob("*_steps_*.json")
        seen.append(json.loads(record.read_text()))

    def resolve(package: str, entry_point: str):  # type: ignore[no-untyped-def]
        return peek if entry_point == "peek" else runner_fixture_tasks.record

    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(tmp_path / "state"))
    result = run_job(root, "steps", resolver=resolve, runs_dir=runs)

    (during,) = seen
    assert during["state"] == "RUNNING" and during["running_task"] == "second"
    assert [(t["task_key"], t["status"]) for t in during["tasks"]] == [("first", "SUCCESS")]
    assert during["record_path"] == result.record_path
    assert isinstance(during["duration_s"], float) and during["duration_s"] >= 0
    final = json.loads(Path(str(result.record_path)).read_text())
    assert final["state"] == "SUCCESS" and "running_task" not in final
    assert [t["task_key"] for t in final["tasks"]] == ["first", "second"]
    assert [p.name for p in runs.iterdir()] == [Path(str(result.record_path)).name]
