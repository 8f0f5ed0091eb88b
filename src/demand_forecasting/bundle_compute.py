"""Pick each job's compute per target: the job cluster, or the serverless environment.

Every job in ``resources/`` declares both kinds of compute, and every wheel task names both:

- a job cluster ``main`` (``new_cluster: ${var.job_cluster}``), used through the task's
  ``job_cluster_key`` with the wheel in the task's ``libraries``;
- a serverless environment ``default`` (the wheel in ``spec.dependencies``), used through the
  task's ``environment_key``.

The Databricks CLI calls :func:`select_compute` on every job when it loads the bundle
(``python.mutators`` in ``databricks.yml``; ``databricks-bundles`` must be installed in
``.venv``). It keeps the compute that the ``compute`` variable names for the target and removes
the other. It only ever removes: every wheel path keeps the location of the YAML it came from,
so the CLI resolves it exactly as it would without the mutator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from databricks.bundles.core import Bundle, Variable, job_mutator
from databricks.bundles.jobs import Job, Task

#: The bundle variable that chooses the compute, and its values.
COMPUTE_VARIABLE = "compute"
CLASSIC = "classic"
SERVERLESS = "serverless"
COMPUTE_CHOICES = (CLASSIC, SERVERLESS)
#: The oldest serverless environment version the tasks run on. ingest, validate_data and
#: monitor keep DataFrames with ``persist()``/``cache()``, which serverless supports from
#: environment version 5 ("Cache DataFrames on serverless compute", Public Preview, on by
#: default: https://docs.databricks.com/aws/en/compute/serverless/dataframe-cache); older
#: versions fail those calls (``NOT_SUPPORTED_WITH_SERVERLESS``).
MIN_SERVERLESS_ENVIRONMENT_VERSION = 5


class ComputeSelectionError(ValueError):
    """A job cannot run on the compute the target asks for."""


def choose_compute(
    job: Job,
    compute: str,
    job_key: str = "<job>",
    resolve: Callable[[Any], Any] = lambda value: value,
) -> Job:
    """Return ``job`` with only the compute ``compute`` names.

    Args:
        job: a job as loaded from the bundle (both computes declared).
        compute: ``"classic"`` or ``"serverless"``.
        job_key: the job's key in ``resources.jobs``, for error messages.
        resolve: gives the value of a ``${var.*}`` field (the CLI's bundle resolves them).

    Returns:
        A copy of the job. ``classic``: no ``environments`` and no task ``environment_key``.
        ``serverless``: no ``job_clusters`` and no task ``job_cluster_key`` or ``libraries``.

    Raises:
        ComputeSelectionError: ``compute`` is not a known choice, a serverless task has a
            library its environment does not install (it would be lost silently), or a
            serverless environment is older than :data:`MIN_SERVERLESS_ENVIRONMENT_VERSION`.
    """
    if compute not in COMPUTE_CHOICES:
        raise ComputeSelectionError(
            f"variable {COMPUTE_VARIABLE!r} is {compute!r}; use one of {', '.join(COMPUTE_CHOICES)}"
        )
    if compute == CLASSIC:
        classic: list[Variable[Task] | Task] = [_classic_task(task) for task in _tasks(job)]
        return replace(job, tasks=classic, environments=[])
    _check_environment_versions(job, job_key, resolve)
    dependencies = _environment_dependencies(job)
    serverless: list[Variable[Task] | Task] = [
        _serverless_task(task, dependencies, job_key) for task in _tasks(job)
    ]
    return replace(job, tasks=serverless, job_clusters=[])


@job_mutator
def select_compute(bundle: Bundle, job: Job) -> Job:
    """The CLI mutator: apply :func:`choose_compute` with the target's ``compute`` variable."""
    compute = str(bundle.variables.get(COMPUTE_VARIABLE, "<not declared>"))
    return choose_compute(
        job, compute, job_key=str(job.name or "<job>"), resolve=bundle.resolve_variable
    )


def _tasks(job: Job) -> list[Task]:
    if isinstance(job.tasks, Variable):
        raise ComputeSelectionError("job tasks given as one variable cannot be inspected")
    return [task for task in job.tasks if isinstance(task, Task)]


def _classic_task(task: Task) -> Task:
    nested = _nested(task)
    if nested is not None:
        task = _with_nested(task, _classic_task(nested))
    return replace(task, environment_key=None)


def _serverless_task(task: Task, dependencies: dict[str, set[str]], job_key: str) -> Task:
    nested = _nested(task)
    if nested is not None:
        task = _with_nested(task, _serverless_task(nested, dependencies, job_key))
    if task.environment_key is None:
        return task
    installed = dependencies.get(str(task.environment_key), set())
    libraries = task.libraries if isinstance(task.libraries, list) else []
    for library in libraries:
        spec = getattr(library, "whl", None)
        if spec is not None and str(spec) not in installed:
            raise ComputeSelectionError(
                f"job {job_key} task {task.task_key}: library {spec} is not in "
                f"environments[{task.environment_key}].spec.dependencies; serverless tasks "
                "install only what their environment lists"
            )
    return replace(task, job_cluster_key=None, libraries=[])


def _check_environment_versions(job: Job, job_key: str, resolve: Callable[[Any], Any]) -> None:
    """Refuse a serverless environment older than :data:`MIN_SERVERLESS_ENVIRONMENT_VERSION`."""
    environments = job.environments if isinstance(job.environments, list) else []
    for environment in environments:
        if isinstance(environment, Variable) or environment.spec is None:
            continue
        version = str(resolve(getattr(environment.spec, "environment_version", None)))
        oldest = MIN_SERVERLESS_ENVIRONMENT_VERSION
        if version.isdigit() and int(version) < oldest:
            raise ComputeSelectionError(
                f"job {job_key}: serverless environment {environment.environment_key} has "
                f"environment_version {version}; the tasks cache DataFrames (persist/cache), "
                f"which serverless supports from version {oldest} "
                "(docs.databricks.com/aws/en/compute/serverless/dataframe-cache). Set the "
                f'variable serverless_environment_version to "{oldest}" '
                "or later for this target, or use compute: classic"
            )


def _environment_dependencies(job: Job) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    environments = job.environments if isinstance(job.environments, list) else []
    for environment in environments:
        if isinstance(environment, Variable):
            continue
        spec = environment.spec
        deps = getattr(spec, "dependencies", [])
        found[str(environment.environment_key)] = (
            {str(d) for d in deps} if isinstance(deps, list) else set()
        )
    return found


def _nested(task: Task) -> Task | None:
    for_each = task.for_each_task
    if for_each is None or isinstance(for_each, Variable):
        return None
    inner = for_each.task
    return inner if isinstance(inner, Task) else None


def _with_nested(task: Task, inner: Task) -> Task:
    for_each = task.for_each_task
    assert for_each is not None and not isinstance(for_each, Variable)
    return replace(task, for_each_task=replace(for_each, task=inner))
