"""The compute mutator keeps exactly the compute a target's ``compute`` variable names."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.bundles.core import Bundle
from databricks.bundles.jobs import Job

from demand_forecasting.bundle_compute import (
    ComputeSelectionError,
    choose_compute,
    select_compute,
)

WHEEL = "../dist/*.whl"


def _wheel_task(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_key": key,
        "job_cluster_key": "main",
        "environment_key": "default",
        "libraries": [{"whl": WHEEL}],
        "python_wheel_task": {"package_name": "demand_forecasting", "entry_point": "df-x"},
        **extra,
    }


def _job(dependencies: list[str] | None = None, environment_version: str = "5") -> Job:
    return Job.from_dict(
        {
            "name": "monthly",
            "job_clusters": [
                {"job_cluster_key": "main", "new_cluster": {"spark_version": "x", "num_workers": 1}}
            ],
            "environments": [
                {
                    "environment_key": "default",
                    "spec": {
                        "environment_version": environment_version,
                        "dependencies": [WHEEL] if dependencies is None else dependencies,
                    },
                }
            ],
            "tasks": [
                _wheel_task("ingest"),
                {
                    "task_key": "decide",
                    "depends_on": [{"task_key": "ingest"}],
                    "condition_task": {"op": "EQUAL_TO", "left": "a", "right": "a"},
                },
                {
                    "task_key": "per_segment",
                    "for_each_task": {"inputs": "[1]", "task": _wheel_task("one")},
                },
            ],
        }
    )


def test_classic_keeps_the_job_cluster_and_drops_the_environment() -> None:
    job = choose_compute(_job(), "classic").as_dict()
    assert "environments" not in job
    assert [c["job_cluster_key"] for c in job["job_clusters"]] == ["main"]
    ingest, decide, per_segment = job["tasks"]
    assert ingest["job_cluster_key"] == "main" and "environment_key" not in ingest
    assert ingest["libraries"] == [{"whl": WHEEL}]
    assert "job_cluster_key" not in decide and "environment_key" not in decide
    nested = per_segment["for_each_task"]["task"]
    assert nested["job_cluster_key"] == "main" and "environment_key" not in nested


def test_serverless_keeps_the_environment_and_drops_cluster_and_libraries() -> None:
    job = choose_compute(_job(), "serverless").as_dict()
    assert "job_clusters" not in job
    assert job["environments"][0]["spec"]["dependencies"] == [WHEEL]
    ingest, _, per_segment = job["tasks"]
    assert ingest["environment_key"] == "default"
    assert "job_cluster_key" not in ingest and "libraries" not in ingest
    nested = per_segment["for_each_task"]["task"]
    assert nested["environment_key"] == "default" and "libraries" not in nested


def test_serverless_refuses_to_drop_a_library_the_environment_lacks() -> None:
    with pytest.raises(ComputeSelectionError, match=r"task ingest: library \.\./dist/\*\.whl"):
        choose_compute(_job(dependencies=[]), "serverless", job_key="monthly")


def test_unknown_choice_is_refused_by_name() -> None:
    with pytest.raises(ComputeSelectionError, match="'compute' is 'gpu'; use one of classic"):
        choose_compute(_job(), "gpu")


@pytest.mark.parametrize(
    ("compute", "kept"), [("classic", "job_clusters"), ("serverless", "environments")]
)
def test_the_cli_mutator_reads_the_target_variable(compute: str, kept: str) -> None:
    bundle = Bundle(target="test", variables={"compute": compute})
    job = select_compute.function(bundle, _job()).as_dict()
    assert kept in job
    assert ({"job_clusters", "environments"} - {kept}).isdisjoint(job)


def test_serverless_refuses_an_environment_without_dataframe_caching() -> None:
    # ingest, validate_data and monitor persist()/cache(): serverless has it from version 5.
    with pytest.raises(ComputeSelectionError) as refused:
        choose_compute(_job(environment_version="4"), "serverless", job_key="monthly")
    message = str(refused.value)
    assert "job monthly: serverless environment default has environment_version 4" in message
    assert 'serverless_environment_version to "5"' in message
    assert "compute: classic" in message
    # Classic drops the environment: its version does not matter there.
    assert "environments" not in choose_compute(_job(environment_version="4"), "classic").as_dict()


def test_the_cli_mutator_resolves_the_environment_version_variable() -> None:
    job = _job(environment_version="${var.serverless_environment_version}")
    old = Bundle(
        target="test", variables={"compute": "serverless", "serverless_environment_version": "4"}
    )
    with pytest.raises(ComputeSelectionError, match="environment_version 4"):
        select_compute.function(old, job)
    current = Bundle(
        target="test", variables={"compute": "serverless", "serverless_environment_version": "5"}
    )
    assert "environments" in select_compute.function(current, job).as_dict()
