"""Each way of breaking the bundle or the pipelines fails the check, naming file and key.

Every test copies the repository's bundle to a temporary folder, breaks one thing, runs the
whole check, and asserts an error whose file, key path and rule point at the break.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bundle_fixtures import MONTHLY_JOB, SCHEMAS_DIR, edit_yaml, job_file

from demand_forecasting.bundle_checks import Finding, check_repository
from demand_forecasting.bundle_checks.cli import run


def _check(root: Path, *, schemas: bool = False) -> list[Finding]:
    folder = SCHEMAS_DIR if schemas and SCHEMAS_DIR.is_dir() else root / "no-schemas"
    return check_repository(root, schemas_dir=folder).errors


def _monthly(data: dict[str, Any]) -> dict[str, Any]:
    return data["resources"]["jobs"][MONTHLY_JOB]


def _wheel_task_index(job: dict[str, Any]) -> int:
    return next(i for i, t in enumerate(job["tasks"]) if "python_wheel_task" in t)


def _dependent_task_index(job: dict[str, Any]) -> int:
    return next(i for i, t in enumerate(job["tasks"]) if t.get("depends_on"))


def _find_template_parameter(node: Any, name: str, value: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        parameters = node.get("parameters")
        if "template" in node and isinstance(parameters, dict) and parameters.get(name) == value:
            return parameters
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_template_parameter(child, name, value)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Mutation:
    """One break: what to do to the copy, and the finding it must cause."""

    apply: Callable[[Path], tuple[str, str]]  # returns (file, key path) it broke
    rule: str
    message_part: str = ""
    schemas: bool = False


# --------------------------------------------------------------------------- breaks


def misspelled_job_key(root: Path) -> tuple[str, str]:
    path = job_file(root)

    def change(data: dict[str, Any]) -> None:
        job = _monthly(data)
        job["timeout_secnds"] = job.pop("timeout_seconds")

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), f"resources.jobs.{MONTHLY_JOB}"


def misspelled_top_level_key(root: Path) -> tuple[str, str]:
    def change(data: dict[str, Any]) -> None:
        renamed = {("target" if k == "targets" else k): v for k, v in data.items()}
        data.clear()
        data.update(renamed)

    edit_yaml(root / "databricks.yml", change)
    return "databricks.yml", "target"


def dangling_depends_on(root: Path) -> tuple[str, str]:
    path = job_file(root)
    index = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal index
        job = _monthly(data)
        index = _dependent_task_index(job)
        job["tasks"][index]["depends_on"][0]["task_key"] = "no_such_task"

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].depends_on[0].task_key",
    )


def dependency_cycle(root: Path) -> tuple[str, str]:
    path = job_file(root)

    def change(data: dict[str, Any]) -> None:
        tasks = _monthly(data)["tasks"]
        first = next(t for t in tasks if not t.get("depends_on"))
        first["depends_on"] = [{"task_key": tasks[-1]["task_key"]}]

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), f"resources.jobs.{MONTHLY_JOB}.tasks["


def missing_variable_in_prod(root: Path) -> tuple[str, str]:
    edit_yaml(root / "databricks.yml", lambda d: d["targets"]["prod"]["variables"].pop("catalog"))
    return "databricks.yml", "targets.prod.variables"


def undeclared_variable(root: Path) -> tuple[str, str]:
    path = job_file(root)
    where = ""

    def change(data: dict[str, Any]) -> None:
        nonlocal where
        job = _monthly(data)
        index = _wheel_task_index(job)
        parameters = job["tasks"][index]["python_wheel_task"].setdefault("parameters", [])
        parameters.append("${var.catlog}")
        where = (
            f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].python_wheel_task."
            f"parameters[{len(parameters) - 1}]"
        )

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), where


def complex_variable_in_a_string(root: Path) -> tuple[str, str]:
    path = job_file(root)
    where = ""

    def change(data: dict[str, Any]) -> None:
        nonlocal where
        job = _monthly(data)
        index = _wheel_task_index(job)
        parameters = job["tasks"][index]["python_wheel_task"].setdefault("parameters", [])
        parameters.append("--cluster=${var.job_cluster}")
        where = (
            f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].python_wheel_task."
            f"parameters[{len(parameters) - 1}]"
        )

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), where


def pipeline_names_unknown_target(root: Path) -> tuple[str, str]:
    path = root / ".azure-pipelines" / "cd.yml"

    def change(data: dict[str, Any]) -> None:
        parameters = _find_template_parameter(data, "target", "prod")
        assert parameters is not None, "cd.yml passes no target: prod to a template"
        parameters["target"] = "production"

    edit_yaml(path, change)
    return ".azure-pipelines/cd.yml", "parameters.target"


def pipeline_names_unknown_job(root: Path) -> tuple[str, str]:
    path = root / ".azure-pipelines" / "cd.yml"

    def change(data: dict[str, Any]) -> None:
        parameters = _find_template_parameter(data, "job", MONTHLY_JOB)
        assert parameters is not None, "cd.yml runs no job: monthly"
        parameters["job"] = "monthyl"

    edit_yaml(path, change)
    return ".azure-pipelines/cd.yml", "parameters.job"


def pipeline_sets_undeclared_variable(root: Path) -> tuple[str, str]:
    path = root / ".azure-pipelines" / "templates" / "bundle.yml"

    def change(data: dict[str, Any]) -> None:
        data["steps"][0]["env"]["BUNDLE_VAR_alert_mail"] = "$(ALERT_EMAIL)"

    edit_yaml(path, change)
    return ".azure-pipelines/templates/bundle.yml", "BUNDLE_VAR_alert_mail"


def cli_pin_drifts(root: Path) -> tuple[str, str]:
    path = root / ".azure-pipelines" / "templates" / "install-databricks-cli.yml"
    index = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal index
        index = next(i for i, p in enumerate(data["parameters"]) if p["name"] == "version")
        data["parameters"][index]["default"] = "1.21.0"

    edit_yaml(path, change)
    return ".azure-pipelines/templates/install-databricks-cli.yml", f"parameters[{index}].default"


def bad_cron(root: Path) -> tuple[str, str]:
    path = job_file(root)

    def change(data: dict[str, Any]) -> None:
        schedule = _monthly(data).setdefault("schedule", {"timezone_id": "UTC"})
        schedule["quartz_cron_expression"] = "0 0 6 5 * *"  # both day fields set

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.schedule.quartz_cron_expression",
    )


def bad_mode(root: Path) -> tuple[str, str]:
    edit_yaml(
        root / "databricks.yml", lambda d: d["targets"]["dev"].__setitem__("mode", "developement")
    )
    return "databricks.yml", "targets.dev.mode"


def unknown_job_cluster_key(root: Path) -> tuple[str, str]:
    path = job_file(root)
    index = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal index
        job = _monthly(data)
        index = _wheel_task_index(job)
        job["tasks"][index]["job_cluster_key"] = "mian"

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].job_cluster_key",
    )


def unknown_environment_key(root: Path) -> tuple[str, str]:
    path = job_file(root)
    index = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal index
        job = _monthly(data)
        index = _wheel_task_index(job)
        job["tasks"][index]["environment_key"] = "defualt"

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].environment_key",
    )


def run_job_task_to_missing_job(root: Path) -> tuple[str, str]:
    path = job_file(root)
    index = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal index
        tasks = _monthly(data)["tasks"]
        tasks.append(
            {
                "task_key": "retrain_all",
                "depends_on": [{"task_key": tasks[0]["task_key"]}],
                "run_job_task": {"job_id": "${resources.jobs.full_retrian.id}"},
            }
        )
        index = len(tasks) - 1

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].run_job_task.job_id",
    )


def unknown_entry_point(root: Path) -> tuple[str, str]:
    path = job_file(root)
    index = 0

    def change(data: dict[str, Any]) -> None:
        nonlocal index
        job = _monthly(data)
        index = _wheel_task_index(job)
        job["tasks"][index]["python_wheel_task"]["entry_point"] = "df-no-such-step"

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].python_wheel_task.entry_point",
    )


def _set_workspace_path(root: Path, target: str, key: str, value: str) -> tuple[str, str]:
    edit_yaml(
        root / "databricks.yml",
        lambda d: d["targets"][target]["workspace"].__setitem__(key, value),
    )
    return "databricks.yml", f"targets.{target}.workspace.{key}"


def prod_root_path_in_shared(root: Path) -> tuple[str, str]:
    return _set_workspace_path(
        root, "prod", "root_path", "/Workspace/Shared/.bundle/${bundle.name}/${bundle.target}"
    )


def state_path_of_test_in_shared(root: Path) -> tuple[str, str]:
    return _set_workspace_path(root, "test", "state_path", "/Shared/.bundle/df/test/state")


def prod_root_path_of_a_named_person(root: Path) -> tuple[str, str]:
    return _set_workspace_path(
        root, "prod", "root_path", "/Workspace/Users/jane.doe@contoso.com/.bundle/df/prod"
    )


def prod_without_root_path(root: Path) -> tuple[str, str]:
    edit_yaml(root / "databricks.yml", lambda d: d["targets"]["prod"].pop("workspace"))
    return "databricks.yml", "targets.prod.workspace.root_path"


def deploying_user_outside_the_bundle_folder(root: Path) -> tuple[str, str]:
    path = job_file(root)

    def change(data: dict[str, Any]) -> None:
        _monthly(data)["email_notifications"]["on_failure"] = ["${workspace.current_user.userName}"]

    edit_yaml(path, change)
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.email_notifications.on_failure[0]",
    )


def prod_without_run_as(root: Path) -> tuple[str, str]:
    edit_yaml(root / "databricks.yml", lambda d: d["targets"]["prod"].pop("run_as"))
    return "databricks.yml", "targets.prod.run_as"


def prod_in_development_mode(root: Path) -> tuple[str, str]:
    edit_yaml(
        root / "databricks.yml", lambda d: d["targets"]["prod"].__setitem__("mode", "development")
    )
    return "databricks.yml", "targets.prod.mode"


def schedule_unpaused_everywhere(root: Path) -> tuple[str, str]:
    path = job_file(root)

    def change(data: dict[str, Any]) -> None:
        schedule = _monthly(data).setdefault(
            "schedule", {"quartz_cron_expression": "0 0 6 5 * ?", "timezone_id": "UTC"}
        )
        schedule["pause_status"] = "UNPAUSED"

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), f"resources.jobs.{MONTHLY_JOB}.schedule.pause_status"


def unknown_compute_choice(root: Path) -> tuple[str, str]:
    edit_yaml(
        root / "databricks.yml",
        lambda d: d["targets"]["test"]["variables"].__setitem__("compute", "gpu"),
    )
    return job_file(root).relative_to(root).as_posix(), f"resources.jobs.{MONTHLY_JOB}"


def misspelled_target_key(root: Path) -> tuple[str, str]:
    edit_yaml(
        root / "databricks.yml",
        lambda d: d["targets"]["prod"].__setitem__("run-as", d["targets"]["prod"]["run_as"]),
    )
    return "databricks.yml", "targets.prod.run-as"


def bad_bundle_permission_level(root: Path) -> tuple[str, str]:
    edit_yaml(
        root / "databricks.yml", lambda d: d["permissions"][1].__setitem__("level", "CAN_READ")
    )
    return "databricks.yml", "permissions[1].level"


def wheel_missing_from_environment(root: Path) -> tuple[str, str]:
    path = job_file(root)

    def change(data: dict[str, Any]) -> None:
        _monthly(data)["environments"][0]["spec"]["dependencies"] = []

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), f"resources.jobs.{MONTHLY_JOB}.tasks["


def unnotified_health_rule(root: Path) -> tuple[str, str]:
    path = job_file(root)
    edit_yaml(
        path,
        lambda d: _monthly(d)["email_notifications"].pop("on_duration_warning_threshold_exceeded"),
    )
    return (
        path.relative_to(root).as_posix(),
        f"resources.jobs.{MONTHLY_JOB}.email_notifications.on_duration_warning_threshold_exceeded",
    )


def task_value_as_a_wheel_parameter(root: Path) -> tuple[str, str]:
    """train's segments as the task value they once were (a list that outgrows 48 KiB)."""
    path = job_file(root)
    where: list[str] = []

    def change(data: dict[str, Any]) -> None:
        tasks = _monthly(data)["tasks"]
        index = next(i for i, t in enumerate(tasks) if t["task_key"] == "train")
        parameters = tasks[index]["python_wheel_task"]["parameters"]
        at = parameters.index("--segments") + 1
        parameters[at] = "{{tasks.check_drift.values.segments_to_train}}"
        where.append(f"resources.jobs.{MONTHLY_JOB}.tasks[{index}].python_wheel_task.parameters")

    edit_yaml(path, change)
    return path.relative_to(root).as_posix(), where[0]


MUTATIONS: dict[str, Mutation] = {
    "misspelled-key": Mutation(misspelled_job_key, "resource-model", "timeout_secnds"),
    "misspelled-key-schema": Mutation(misspelled_job_key, "schema", "timeout_secnds", schemas=True),
    "misspelled-top-level-key": Mutation(
        misspelled_top_level_key, "unknown-top-level-key", "did you mean 'targets'"
    ),
    "misspelled-target-key": Mutation(misspelled_target_key, "unknown-target-key", "run-as"),
    "dangling-depends-on": Mutation(dangling_depends_on, "dangling-depends-on", "no_such_task"),
    "dependency-cycle": Mutation(dependency_cycle, "dependency-cycle", "cycle"),
    "missing-variable-in-prod": Mutation(
        missing_variable_in_prod, "unresolved-variable", "'catalog'"
    ),
    "undeclared-variable": Mutation(undeclared_variable, "undefined-variable", "catlog"),
    "complex-variable-in-string": Mutation(
        complex_variable_in_a_string, "complex-variable-in-string", "job_cluster"
    ),
    "pipeline-unknown-target": Mutation(
        pipeline_names_unknown_target, "unknown-target", "'production'"
    ),
    "pipeline-unknown-job": Mutation(pipeline_names_unknown_job, "unknown-job", "'monthyl'"),
    "pipeline-undeclared-variable": Mutation(
        pipeline_sets_undeclared_variable, "unknown-variable", "alert_mail"
    ),
    "bad-cron": Mutation(bad_cron, "bad-cron", "day-of-month"),
    "cli-version-drift": Mutation(cli_pin_drifts, "cli-version-pin", "databricks-bundles"),
    "bad-mode": Mutation(bad_mode, "bad-mode", "developement"),
    "unknown-job-cluster-key": Mutation(unknown_job_cluster_key, "unknown-job-cluster", "mian"),
    "unknown-environment-key": Mutation(unknown_environment_key, "unknown-environment", "defualt"),
    "run-job-task-to-missing-job": Mutation(
        run_job_task_to_missing_job, "dangling-run-job", "full_retrian"
    ),
    "unknown-entry-point": Mutation(unknown_entry_point, "unknown-entry-point", "df-no-such-step"),
    "prod-root-path-in-shared": Mutation(
        prod_root_path_in_shared, "shared-bundle-folder", "/Workspace/Shared/.bundle/"
    ),
    "test-state-path-in-shared": Mutation(
        state_path_of_test_in_shared, "shared-bundle-folder", "'/Shared/.bundle/df/test/state'"
    ),
    "prod-root-path-of-a-named-person": Mutation(
        prod_root_path_of_a_named_person, "production-root-path", "current_user.userName"
    ),
    "prod-without-root-path": Mutation(
        prod_without_root_path, "production-root-path", "must set workspace.root_path"
    ),
    "deploying-user-outside-the-bundle-folder": Mutation(
        deploying_user_outside_the_bundle_folder, "personal-path", "bundle-check.user@"
    ),
    "prod-without-run-as": Mutation(prod_without_run_as, "production-run-as", "run_as"),
    "prod-in-development-mode": Mutation(prod_in_development_mode, "target-mode", "production"),
    "schedule-unpaused-in-dev": Mutation(schedule_unpaused_everywhere, "schedule-pause", "'dev'"),
    "unknown-compute": Mutation(unknown_compute_choice, "compute", "gpu"),
    "bad-permission-level": Mutation(
        bad_bundle_permission_level, "bundle-permission-level", "CAN_READ"
    ),
    "unnotified-health-rule": Mutation(
        unnotified_health_rule, "job-health-notification", "notifies no one"
    ),
    "task-value-as-a-wheel-parameter": Mutation(
        task_value_as_a_wheel_parameter, "task-value-parameter", "hand-over table"
    ),
    "wheel-missing-from-environment": Mutation(
        wheel_missing_from_environment, "wheel-not-in-environment", "serverless"
    ),
}


def test_the_unbroken_copy_passes(bundle_copy: Path) -> None:
    errors = _check(bundle_copy)
    assert not errors, "\n".join(map(str, errors))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_break_fails_naming_file_and_key(bundle_copy: Path, name: str) -> None:
    mutation = MUTATIONS[name]
    if mutation.schemas and not SCHEMAS_DIR.is_dir():
        pytest.skip(f"official JSON schemas not found at {SCHEMAS_DIR}")
    file, key = mutation.apply(bundle_copy)
    errors = _check(bundle_copy, schemas=mutation.schemas)
    matching = [e for e in errors if e.rule == mutation.rule]
    assert matching, f"no '{mutation.rule}' error; got:\n" + "\n".join(map(str, errors))
    located = [e for e in matching if e.file == file and key in e.key]
    assert located, f"'{mutation.rule}' error does not name {file} at {key}:\n" + "\n".join(
        map(str, matching)
    )
    assert any(mutation.message_part in str(e) for e in located), "\n".join(map(str, located))
    assert all(str(e).startswith(f"{e.file}: {e.key}: ") for e in located)


def test_cli_exits_non_zero_and_prints_file_and_key(
    bundle_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, key = bad_mode(bundle_copy)
    code = run(
        [
            "--root",
            str(bundle_copy),
            "--schemas",
            str(bundle_copy / "no-schemas"),
            "--format",
            "azure",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert f"{file}: {key}: mode 'developement' is not a deployment mode" in out
    assert "##vso[task.logissue type=error;sourcepath=databricks.yml]targets.dev.mode" in out
    assert "skipped: bundle files: schema" in out


def test_cli_exits_zero_on_the_unbroken_copy(
    bundle_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--root", str(bundle_copy), "--schemas", str(bundle_copy / "none")]) == 0
    assert "check-bundle: 0 error(s)" in capsys.readouterr().out
