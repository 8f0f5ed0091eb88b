"""Jobs the runner refuses before running anything, with a message that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import runner_fixture_tasks
from runner_support import write_bundle

from demand_forecasting.cli import main as cli_main
from demand_forecasting.runner import BundleError, JobRunner, load_bundle, resolve_entry_point

PKG = "package_name: runner_fixture_tasks"


def problems_of(root: Path, job: str) -> list[str]:
    with pytest.raises(BundleError) as raised:
        JobRunner(load_bundle(root)).run(job)
    assert runner_fixture_tasks.CALLS == [], "nothing may run when a job is refused"
    return raised.value.problems


def test_unsupported_task_types_are_refused_by_name(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        monthly:
          tasks:
            - task_key: ingest
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: explore
              depends_on: [{{task_key: ingest}}]
              notebook_task: {{notebook_path: ../notebooks/explore.py}}
            - task_key: dlt
              pipeline_task: {{pipeline_id: "1"}}
    """
    problems = problems_of(write_bundle(tmp_path, jobs, file_name="monthly_job.yml"), "monthly")

    assert problems[0].startswith(
        "resources/monthly_job.yml: job 'monthly' task 'explore': notebook_task is not "
        "supported by the local runner"
    )
    assert problems[1].startswith(
        "resources/monthly_job.yml: job 'monthly' task 'dlt': pipeline_task is not supported"
    )


def test_a_cycle_is_named(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: a
              depends_on: [{{task_key: c}}]
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: b
              depends_on: [{{task_key: a}}]
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: c
              depends_on: [{{task_key: b}}]
              python_wheel_task: {{{PKG}, entry_point: record}}
    """
    problems = problems_of(write_bundle(tmp_path, jobs), "j")

    assert problems == [
        "resources/jobs.yml: job 'j': tasks depend on each other in a cycle: a -> b -> c -> a; "
        "remove one of these depends_on"
    ]


def test_unknown_depends_on_and_duplicate_task_keys(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          tasks:
            - task_key: train
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: score
              depends_on: [{{task_key: trian}}]
              python_wheel_task: {{{PKG}, entry_point: record}}
            - task_key: score
              python_wheel_task: {{{PKG}, entry_point: record}}
    """
    with pytest.raises(BundleError) as raised:
        load_bundle(write_bundle(tmp_path, jobs))
    assert "task_key 'score' is declared twice in this job" in str(raised.value)

    jobs = jobs.replace(
        "- task_key: score\n              python_wheel_task",
        "- task_key: x\n              python_wheel_task",
    )
    problems = problems_of(write_bundle(tmp_path, jobs), "j")
    assert problems == [
        "resources/jobs.yml: job 'j' task 'score': depends_on 'trian' is not a task of this "
        "job (did you mean 'train'?); tasks: train, score, x"
    ]


def test_missing_entry_points_and_bad_references(tmp_path: Path) -> None:
    jobs = f"""\
    resources:
      jobs:
        j:
          parameters: [{{name: month, default: "2024-01"}}]
          tasks:
            - task_key: a
              python_wheel_task: {{{PKG}, entry_point: no_such_function}}
            - task_key: b
              python_wheel_task:
                {PKG}
                entry_point: record
                parameters: ["{{{{tasks.a.values.x}}}}", "{{{{job.parameters.mnth}}}}",
                             "{{{{input}}}}", "{{{{unknown.namespace}}}}"]
            - task_key: c
              depends_on: [{{task_key: b, outcome: "true"}}]
              python_wheel_task: {{{PKG}, entry_point: record}}
    """
    problems = problems_of(write_bundle(tmp_path, jobs), "j")

    assert problems == [
        "resources/jobs.yml: job 'j' task 'c': depends_on 'b' has an outcome, but only a "
        "condition_task has outcomes; remove outcome",
        "resources/jobs.yml: job 'j' task 'a': entry point 'no_such_function' of package "
        "'runner_fixture_tasks': not in its entry points and "
        "runner_fixture_tasks.no_such_function does not exist; add it to [project.scripts] "
        "in pyproject.toml and reinstall",
    ]
    jobs = jobs.replace(', outcome: "true"', "").replace("no_such_function", "record")
    problems = problems_of(write_bundle(tmp_path, jobs), "j")
    assert problems == [
        "resources/jobs.yml: job 'j' task 'b' python_wheel_task.parameters[0]: "
        "{{tasks.a.values.x}}: task 'a' is not upstream of this task; add it to depends_on so "
        "that it has run first",
        "resources/jobs.yml: job 'j' task 'b' python_wheel_task.parameters[1]: "
        "{{job.parameters.mnth}}: the job has no parameter 'mnth' (parameters: month)",
        "resources/jobs.yml: job 'j' task 'b' python_wheel_task.parameters[2]: "
        "{{input}}: {{input}} exists only inside a for_each_task",
    ]


def test_run_job_task_loops_and_broken_child_jobs_are_refused(tmp_path: Path) -> None:
    jobs = """\
    resources:
      jobs:
        parent:
          tasks:
            - task_key: child
              run_job_task: {job_id: "${resources.jobs.child.id}"}
        child:
          tasks:
            - task_key: back
              run_job_task: {job_id: "${resources.jobs.parent.id}"}
            - task_key: nb
              notebook_task: {notebook_path: x}
    """
    problems = problems_of(write_bundle(tmp_path, jobs), "parent")

    assert problems[0] == (
        "resources/jobs.yml: job 'parent' task 'child': run_job_task job 'child' cannot run:"
    )
    assert "nb': notebook_task is not supported" in problems[1]


def test_entry_points_are_found_in_package_metadata() -> None:
    function = resolve_entry_point("demand_forecasting", "demand-forecasting")

    assert function is cli_main


def test_cli_refuses_a_bad_bundle_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = f"""\
    resources:
      jobs:
        monthly:
          tasks:
            - task_key: train
              python_wheel_task: {{{PKG}, entry_point: record, parameters: ["${{var.horizonn}}"]}}
    """
    root = write_bundle(tmp_path, jobs, file_name="monthly_job.yml")

    code = cli_main(["run", "monthly", "--target", "dev", "--bundle-root", str(root)])

    assert code == 2
    err = capsys.readouterr().err
    assert (
        "resources/monthly_job.yml: job 'monthly' task 'train' "
        "python_wheel_task.parameters[0]: undefined variable 'var.horizonn'"
    ) in err
    assert runner_fixture_tasks.CALLS == []
