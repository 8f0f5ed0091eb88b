"""The rollback job: how a person rolls a champion back on Databricks.

It must be manual (no schedule), take the segment, the version, the reason and the actor as
job parameters, and hand them to the wheel's ``df-rollback`` entry point, which must exist.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from demand_forecasting.bundle_checks.entry_points import from_pyproject
from demand_forecasting.runner import Bundle, JobRunner, TaskStatus
from demand_forecasting.runner.entry_points import EntryPoint

JOB = "rollback"
PARAMETERS = {"segment", "to_version", "reason", "actor"}


def test_prod_has_a_manual_rollback_job_on_the_declared_entry_point(
    repo_root: Path, prod_bundle: Bundle
) -> None:
    job = prod_bundle.config["resources"]["jobs"][JOB]
    assert not {"schedule", "trigger", "continuous"} & set(job), "rolling back must be manual"
    assert {p["name"]: p["default"] for p in job["parameters"]} == dict.fromkeys(PARAMETERS, "")
    (task,) = job["tasks"]
    assert task["python_wheel_task"]["entry_point"] == "df-rollback"
    assert task["max_retries"] == 0  # a retry would roll the rollback back
    declared = from_pyproject(repo_root / "pyproject.toml")
    assert declared.scripts["df-rollback"] == "demand_forecasting.models.rollback:task_main"
    assert "df-rollback" not in declared.missing_targets


def test_the_job_parameters_reach_the_rollback_task(prod_bundle: Bundle) -> None:
    seen: list[list[str]] = []

    def resolver(package: str, entry_point: str) -> EntryPoint:
        assert (package, entry_point) == ("demand_forecasting", "df-rollback")
        return lambda: seen.append(list(sys.argv[1:]))

    runner = JobRunner(prod_bundle, resolver=resolver, sleep=lambda _: None)
    parameters = {"segment": "a", "to_version": "", "reason": "INC-7", "actor": "jane@x.com"}
    result = runner.run(JOB, parameters)
    assert [t.status for t in result.tasks] == [TaskStatus.SUCCESS]
    (argv,) = seen
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    assert (options["--target"], options["--catalog"]) == ("prod", "prod")
    assert (options["--segment"], options["--to-version"]) == ("a", "")
    assert (options["--reason"], options["--actor"]) == ("INC-7", "jane@x.com")


def test_the_documented_run_now_commands_send_the_job_s_parameters(
    repo_root: Path, prod_bundle: Bundle
) -> None:
    """docs/deployment.md's ``databricks jobs run-now --json "..."`` lines, as bash would pass
    them (double quotes, ``$JOB_ID`` expanded), are JSON naming exactly the job's parameters."""
    text = (repo_root / "docs" / "deployment.md").read_text(encoding="utf-8")
    commands = re.findall(r'databricks jobs run-now --json (".*?[^\\]")\n```', text, re.DOTALL)
    jobs = prod_bundle.config["resources"]["jobs"]
    expected = {frozenset(p["name"] for p in jobs[key]["parameters"]) for key in ("approve", JOB)}
    assert len(commands) == len(expected)
    found = set()
    for command in commands:
        (argument,) = shlex.split(command.replace("$JOB_ID", "123"))
        body = json.loads(argument)
        assert body["job_id"] == 123
        found.add(frozenset(body["job_parameters"]))
    assert found == expected
