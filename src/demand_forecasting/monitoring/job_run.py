"""The job's parent MLflow run: one run per job run, found (or created) by its job run id.

Every task of a job run logs to the same parent run: telemetry metrics, the run report,
and (for the models module) the per-segment training runs as its children. Tasks find it by
the tag :data:`JOB_RUN_ID_TAG`, so no task depends on another having created it.
"""

from __future__ import annotations

import logging

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from demand_forecasting.platform.mlflow_setup import ensure_experiment

log = logging.getLogger(__name__)

JOB_RUN_ID_TAG = "demand_forecasting.job_run_id"
TARGET_TAG = "demand_forecasting.target"
KIND_TAG = "demand_forecasting.kind"
JOB_RUN_KIND = "job_run"


def find_job_run(client: MlflowClient, experiment_id: str, job_run_id: str) -> Run | None:
    """The parent run of job run ``job_run_id`` in the experiment, if one exists."""
    found = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{JOB_RUN_ID_TAG}` = '{job_run_id}' AND tags.`{KIND_TAG}` = '{JOB_RUN_KIND}'"
        ),
        max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    return found[0] if found else None


def job_parent_run(
    client: MlflowClient,
    experiment: str,
    job_run_id: str,
    *,
    target: str,
    artifact_root: str | None = None,
    job_name: str = "monthly",
) -> str:
    """The run id of job run ``job_run_id``'s parent run in ``experiment`` (created once).

    Args:
        client: the MLflow client of the run context.
        experiment: experiment path (on Databricks a workspace path, e.g. the bundle's
            ``${resources.experiments.demand_forecasting.name}``).
        job_run_id: ``{{job.run_id}}`` of the job run.
        target: bundle target, recorded as a tag.
        artifact_root: local artifact root for a new experiment (None on Databricks).
        job_name: used in the run's name.
    """
    experiment_id = ensure_experiment(client, experiment, artifact_root)
    existing = find_job_run(client, experiment_id, job_run_id)
    if existing is not None:
        return str(existing.info.run_id)
    run = client.create_run(
        experiment_id,
        run_name=f"{job_name} job run {job_run_id}",
        tags={JOB_RUN_ID_TAG: job_run_id, TARGET_TAG: target, KIND_TAG: JOB_RUN_KIND},
    )
    log.info("MLflow parent run %s created for job run %s", run.info.run_id, job_run_id)
    return str(run.info.run_id)
