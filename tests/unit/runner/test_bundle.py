"""Loading a bundle: includes, target merge, variables and ${...} references."""

from __future__ import annotations

from pathlib import Path

import pytest
from databricks.bundles.jobs import Job as BundleJob
from runner_support import write_bundle

from demand_forecasting.runner import BundleError, load_bundle
from demand_forecasting.runner.model import local_job_id

JOBS = """\
resources:
  jobs:
    train:
      name: train-${bundle.target}
      parameters:
        - {name: month, default: "2024-01"}
      tasks:
        - task_key: fit
          python_wheel_task:
            package_name: runner_fixture_tasks
            entry_point: record
            parameters: ["--catalog=${var.catalog}", "--schema=${var.schema}",
                         "--horizon=${var.horizon}", "--month={{job.parameters.month}}"]
    monthly:
      name: monthly
      tasks:
        - task_key: retrain
          run_job_task:
            job_id: ${resources.jobs.train.id}
            job_parameters: {note: "${resources.jobs.train.name}"}
"""


def test_target_variables_override_defaults_and_references_resolve(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path, JOBS), "prod", user_name="ada@example.com")

    assert bundle.target == "prod"
    assert bundle.variables == {"catalog": "prod", "schema": "demand", "horizon": 3}
    fit = bundle.jobs["train"]["tasks"][0]["python_wheel_task"]
    assert fit["parameters"] == [
        "--catalog=prod",
        "--schema=demand",
        "--horizon=3",
        "--month={{job.parameters.month}}",
    ]
    assert bundle.jobs["train"]["name"] == "train-prod"
    retrain = bundle.jobs["monthly"]["tasks"][0]["run_job_task"]
    assert retrain["job_id"] == local_job_id("train")
    assert retrain["job_parameters"] == {"note": "train-prod"}
    assert bundle.config["workspace"]["file_path"] == (
        "/Workspace/Users/ada@example.com/.bundle/fixture/prod/files"
    )


def test_default_target_is_the_one_marked_default_and_development_prefixes_names(
    tmp_path: Path,
) -> None:
    bundle = load_bundle(write_bundle(tmp_path, JOBS), user_name="ada.l@example.com")

    assert bundle.target == "dev"
    assert bundle.mode == "development"
    assert bundle.jobs["train"]["name"] == "[dev ada_l] train-dev"
    # ${resources.jobs.<key>.name} sees the deployed (prefixed) name
    note = bundle.jobs["monthly"]["tasks"][0]["run_job_task"]["job_parameters"]["note"]
    assert note == "[dev ada_l] train-dev"


def test_resolved_jobs_are_valid_bundle_jobs(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path, JOBS), "prod")

    for job in bundle.jobs.values():
        BundleJob.from_dict(job)  # raises on a field the Jobs API does not have


def test_bundle_var_environment_and_var_flag_win(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, JOBS)

    from_env = load_bundle(root, "prod", environ={"BUNDLE_VAR_schema": "env_schema"})
    from_flag = load_bundle(
        root, "prod", variables={"schema": "flag"}, environ={"BUNDLE_VAR_schema": "env_schema"}
    )

    assert from_env.variables["schema"] == "env_schema"
    assert from_flag.variables["schema"] == "flag"


def test_target_resources_merge_tasks_by_key(tmp_path: Path) -> None:
    root_yaml = """\
    bundle: {name: fixture}
    include: [resources/*.yml]
    targets:
      dev:
        default: true
        resources:
          jobs:
            train:
              tasks:
                - task_key: fit
                  max_retries: 2
                - task_key: extra
                  depends_on: [{task_key: fit}]
                  python_wheel_task: {package_name: runner_fixture_tasks, entry_point: record}
    """
    jobs = """\
    resources:
      jobs:
        train:
          tasks:
            - task_key: fit
              python_wheel_task: {package_name: runner_fixture_tasks, entry_point: record}
    """
    bundle = load_bundle(write_bundle(tmp_path, jobs, root_yaml))

    tasks = bundle.jobs["train"]["tasks"]
    assert [t["task_key"] for t in tasks] == ["fit", "extra"]
    assert tasks[0]["max_retries"] == 2
    assert tasks[0]["python_wheel_task"]["entry_point"] == "record"
    assert bundle.source_of("jobs", "train") == "resources/jobs.yml"


def test_complex_variable_fields_resolve(tmp_path: Path) -> None:
    root_yaml = """\
    bundle: {name: fixture}
    include: [resources/*.yml]
    variables:
      thresholds:
        type: complex
        default: {psi: 0.2, segments: [a, b]}
    targets:
      dev:
        default: true
        variables:
          thresholds: {psi: 0.3, segments: [c]}
    """
    jobs = """\
    resources:
      jobs:
        j:
          tasks:
            - task_key: t
              python_wheel_task:
                package_name: runner_fixture_tasks
                entry_point: record
                parameters: ["--psi=${var.thresholds.psi}", "--first=${var.thresholds.segments[0]}"]
    """
    bundle = load_bundle(write_bundle(tmp_path, jobs, root_yaml))

    params = bundle.jobs["j"]["tasks"][0]["python_wheel_task"]["parameters"]
    assert params == ["--psi=0.3", "--first=c"]


def test_yaml_is_read_as_yaml_1_2_like_the_cli(tmp_path: Path) -> None:
    jobs = """\
    resources:
      jobs:
        j:
          parameters: [{name: month, default: 2024-01-01}]
          tasks:
            - task_key: no
              python_wheel_task: {package_name: runner_fixture_tasks, entry_point: record}
    """
    job = load_bundle(write_bundle(tmp_path, jobs)).job("j")

    assert [t.key for t in job.tasks] == ["no"]
    assert job.parameters[0].default == "2024-01-01"


def test_undefined_variable_names_file_job_task_and_key(tmp_path: Path) -> None:
    jobs = """\
    resources:
      jobs:
        monthly:
          tasks:
            - task_key: train
              python_wheel_task:
                package_name: runner_fixture_tasks
                entry_point: record
                parameters: ["--catalog", "${var.catalog}", "--h", "${var.horizonn}"]
    """
    with pytest.raises(BundleError) as raised:
        load_bundle(write_bundle(tmp_path, jobs, file_name="monthly_job.yml"))

    assert raised.value.problems == [
        "resources/monthly_job.yml: job 'monthly' task 'train' python_wheel_task.parameters[3]: "
        "undefined variable 'var.horizonn' (did you mean 'horizon'?); declare it under "
        "variables: in databricks.yml"
    ]


def test_undefined_resource_and_bundle_references_are_all_reported(tmp_path: Path) -> None:
    jobs = """\
    resources:
      jobs:
        j:
          name: ${bundle.nme}
          tasks:
            - task_key: t
              run_job_task: {job_id: "${resources.jobs.trainn.id}"}
    """
    with pytest.raises(BundleError) as raised:
        load_bundle(write_bundle(tmp_path, jobs))

    problems = raised.value.problems
    assert problems[0] == "resources/jobs.yml: job 'j' name: undefined reference '${bundle.nme}'"
    assert problems[1].startswith(
        "resources/jobs.yml: job 'j' task 't' run_job_task.job_id: undefined resource "
        "'resources.jobs.trainn.id': no job 'trainn' in this bundle"
    )


def test_variable_without_value_fails_naming_the_target(tmp_path: Path) -> None:
    root_yaml = """\
    bundle: {name: fixture}
    variables:
      catalog: {description: no default}
    targets:
      dev: {default: true}
    """
    with pytest.raises(BundleError, match="variable 'catalog' has no value for target 'dev'"):
        load_bundle(write_bundle(tmp_path, "resources: {}\n", root_yaml))


def test_unknown_target_and_undeclared_target_variable_are_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, JOBS)
    with pytest.raises(BundleError, match="no target 'prd' \\(did you mean 'prod'\\?\\)"):
        load_bundle(root, "prd")

    (root / "databricks.yml").write_text(
        (root / "databricks.yml").read_text() + "  test:\n    variables:\n      catalg: x\n"
    )
    with pytest.raises(BundleError, match="variable 'catalg' is assigned a value but not declared"):
        load_bundle(root, "test")


def test_same_resource_key_in_two_files_is_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, JOBS)
    (root / "resources" / "other.yml").write_text("resources:\n  jobs:\n    train: {}\n")

    with pytest.raises(BundleError, match=r"job 'train' is also defined in resources/jobs\.yml"):
        load_bundle(root)
