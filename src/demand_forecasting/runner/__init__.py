"""The local runner: run a bundle's jobs on one machine, as Databricks Jobs would.

- :func:`load_bundle` reads ``databricks.yml`` and its includes for a target and resolves
  every ``${...}`` reference (:class:`Bundle`, ``bundle.jobs``, ``bundle.job(key)``).
- :class:`JobRunner` / :func:`run_job` check a job (:func:`plan_job`) and run its tasks
  in this process; :func:`run_job` holds the job's ``max_concurrent_runs`` across processes
  (:mod:`demand_forecasting.runner.concurrency`).
- :class:`BundleError` is raised, before anything runs, for anything that cannot run.
"""

from demand_forecasting.runner.bundle import Bundle, load_bundle
from demand_forecasting.runner.dag import JobPlan, plan_job
from demand_forecasting.runner.entry_points import EntryPointNotFound, resolve_entry_point
from demand_forecasting.runner.errors import BundleError
from demand_forecasting.runner.executor import JobRunner, run_job
from demand_forecasting.runner.model import Job, Task, parse_job
from demand_forecasting.runner.results import JobResultState, JobRunResult, TaskResult, TaskStatus

__all__ = [
    "Bundle",
    "BundleError",
    "EntryPointNotFound",
    "Job",
    "JobPlan",
    "JobResultState",
    "JobRunResult",
    "JobRunner",
    "Task",
    "TaskResult",
    "TaskStatus",
    "load_bundle",
    "parse_job",
    "plan_job",
    "resolve_entry_point",
    "run_job",
]
