"""The approve job: how a person approves in a target with require_approval (prod).

It must be manual (no schedule), take the segments, the reason and the approver as job
parameters, and hand them to the wheel's ``df-approve`` entry point, which must exist.
"""

from __future__ import annotations

import sys
from pathlib import Path

from demand_forecasting.bundle_checks.entry_points import from_pyproject
from demand_forecasting.runner import Bundle, JobRunner, TaskStatus
from demand_forecasting.runner.entry_points import EntryPoint

JOB = "approve"
PARAMETERS = {"segments", "reason", "approver"}


def test_prod_requires_approval_and_has_a_manual_approve_job(
    repo_root: Path, prod_bundle: Bundle
) -> None:
    bundle = prod_bundle
    assert bundle.variables["require_approval"] == "true"
    job = bundle.config["resources"]["jobs"][JOB]
    assert not {"schedule", "trigger", "continuous"} & set(job), "approving must be manual"
    assert {p["name"]: p["default"] for p in job["parameters"]} == dict.fromkeys(PARAMETERS, "")
    (task,) = job["tasks"]
    assert task["python_wheel_task"]["entry_point"] == "df-approve"
    declared = from_pyproject(repo_root / "pyproject.toml")
    assert declared.scripts["df-approve"] == "demand_forecasting.models.approve:task_main"
    assert "df-approve" not in declared.missing_targets


def test_the_job_parameters_reach_the_approve_task(prod_bundle: Bundle) -> None:
    seen: list[list[str]] = []

    def resolver(package: str, entry_point: str) -> EntryPoint:
        assert (package, entry_point) == ("demand_forecasting", "df-approve")
        return lambda: seen.append(list(sys.argv[1:]))

    runner = JobRunner(prod_bundle, resolver=resolver, sleep=lambda _: None)
    result = runner.run(
        JOB, {"segments": "a,b", "reason": "CAB-1234", "approver": "jane.doe@contoso.com"}
    )
    assert [t.status for t in result.tasks] == [TaskStatus.SUCCESS]
    (argv,) = seen
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    assert options["--target"] == "prod"
    assert options["--catalog"] == "prod"
    assert (options["--segments"], options["--reason"], options["--approver"]) == (
        "a,b",
        "CAB-1234",
        "jane.doe@contoso.com",
    )
