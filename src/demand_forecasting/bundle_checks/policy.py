"""This project's deployment rules, in one place: names, modes and what every job must set.

The checks read these; change a rule here, not in the check that applies it.
"""

from __future__ import annotations

#: Keys a bundle file may have at the top level (the CLI's root keys; ``environments`` is the
#: deprecated spelling of ``targets`` and is refused).
TOP_LEVEL_KEYS = frozenset(
    {
        "artifacts",
        "bundle",
        "experimental",
        "include",
        "permissions",
        "presets",
        "python",
        "resources",
        "run_as",
        "scripts",
        "sync",
        "targets",
        "variables",
        "workspace",
    }
)
#: Keys a target may have.
TARGET_KEYS = frozenset(
    {
        "artifacts",
        "bundle",
        "cluster_id",
        "compute_id",
        "default",
        "git",
        "mode",
        "permissions",
        "presets",
        "resources",
        "run_as",
        "sync",
        "variables",
        "workspace",
    }
)
#: The deployment modes the CLI knows.
MODES = ("development", "production")
#: Levels allowed in the bundle-wide ``permissions`` (the CLI maps them per resource type).
BUNDLE_PERMISSION_LEVELS = ("CAN_MANAGE", "CAN_VIEW", "CAN_RUN")
PRINCIPAL_KEYS = ("group_name", "service_principal_name", "user_name")

#: Targets this project must have, and the role of each.
DEVELOPMENT_TARGET = "dev"
TEST_TARGET = "test"
PRODUCTION_TARGET = "prod"
REQUIRED_TARGETS = (DEVELOPMENT_TARGET, TEST_TARGET, PRODUCTION_TARGET)
REQUIRED_MODES = {DEVELOPMENT_TARGET: "development", PRODUCTION_TARGET: "production"}
#: Targets whose schedules run; every other target's schedules must be paused.
SCHEDULED_TARGETS = frozenset({PRODUCTION_TARGET})
#: Substrings that make a value personal (not allowed in shared targets outside the bundle
#: folder below).
PERSONAL_PATH_MARKERS = ("/Users/", "current_user")
#: Where a shared target's bundle folder must live: the deploying identity's own folder (the
#: service principal deploys test and prod from CI), so that the bundle's ``permissions:`` are
#: applied to it. Named through the reference, never through a literal user's name.
PRODUCTION_ROOT_PREFIX = "/Workspace/Users/${workspace.current_user.userName}/"
PRODUCTION_ROOT_EXAMPLE = PRODUCTION_ROOT_PREFIX + ".bundle/${bundle.name}/${bundle.target}"
#: Workspace folders every user can manage: the CLI applies no ``permissions:`` to a bundle
#: folder below them (databricks/cli#1866), so anyone could replace the deployed wheel.
SHARED_WORKSPACE_PREFIXES = ("/Workspace/Shared/", "/Shared/")
#: The ``workspace`` keys that place the bundle's files, wheel and state.
WORKSPACE_PATH_KEYS = ("root_path", "file_path", "artifact_path", "state_path", "resource_path")

#: Where the dataset configs a target's ``dataset`` variable names ship (in the wheel).
DATASET_VARIABLE = "dataset"
DATASET_DIR = "src/demand_forecasting/conf/datasets"

#: Variables read by python.mutators (not through ``${var.x}`` in YAML).
MUTATOR_VARIABLES = frozenset({"compute"})

#: Compute names every job declares (see demand_forecasting.bundle_compute).
JOB_CLUSTER_KEY = "main"
ENVIRONMENT_KEY = "default"
#: Task types that run code on compute; the others (condition_task, run_job_task) must not
#: name compute.
COMPUTE_TASK_TYPES = ("python_wheel_task", "spark_python_task", "notebook_task")
NON_COMPUTE_TASK_TYPES = ("condition_task", "run_job_task")

#: What every job must set to be operable.
MAX_CONCURRENT_RUNS = 1
HEALTH_METRIC = "RUN_DURATION_SECONDS"
#: The notification event of a job whose health rule is exceeded.
DURATION_WARNING_EVENT = "on_duration_warning_threshold_exceeded"

#: Lists inside a job that targets merge by a key instead of concatenating.
JOB_KEYED_LISTS = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "environments": "environment_key",
    "parameters": "name",
}
