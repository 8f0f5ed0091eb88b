"""Which registry a governance command (``approve``, ``rollback``) acts on, and its options.

The command builds the same context as a job task: on Databricks it acts on the Unity Catalog
models of ``--catalog``/``--schema``; anywhere else on the local sqlite registry under
``.local/``. A person on a laptop who types ``--target prod`` means prod's models, which this
process cannot reach; acting on the local registry instead would report a promotion or a
rollback that prod never saw. So off Databricks only the development target runs, unless
``--local`` says that the local registry is meant (after ``demand-forecasting run ... -t prod``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from demand_forecasting.models.registry import DEFAULT_MODEL_PREFIX, add_model_prefix_option
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.platform.detect import on_databricks
from demand_forecasting.platform.paths import find_bundle_root

#: The target whose registry is the local one when run off Databricks.
LOCAL_TARGET = "dev"

#: How to do each command on Databricks, for the refusal message.
ON_DATABRICKS = {
    "approve": (
        "start the bundle's approve job in that workspace (job 'demand-forecasting-approve', "
        "job parameters segments, reason and approver)"
    ),
    "rollback": (
        "run `demand-forecasting rollback` on Databricks (a notebook or job task on a cluster "
        "with this wheel installed), as an identity that may change the models"
    ),
}


class RegistryChoiceError(RuntimeError):
    """The command would act on a registry other than the one its target means."""


def check_registry_choice(command: str, target: str, *, local: bool, databricks: bool) -> None:
    """Refuse a command whose target's registry is not the one this process reaches.

    Args:
        command: ``approve`` or ``rollback`` (named in the message).
        target: the ``--target`` given.
        local: ``--local``: the local registry is meant, whatever the target.
        databricks: whether this process runs on Databricks.

    Raises:
        RegistryChoiceError: off Databricks with a target other than ``dev`` and no
            ``--local``; or ``--local`` on Databricks, where there is no local registry.
    """
    if databricks:
        if local:
            raise RegistryChoiceError(
                f"{command} --local: this runs on Databricks, where {command} acts on the "
                "Unity Catalog models of --catalog/--schema and there is no local registry; "
                "drop --local"
            )
        return
    if local or target == LOCAL_TARGET:
        return
    how = ON_DATABRICKS.get(command, "run it on Databricks")
    raise RegistryChoiceError(
        f"{command} --target {target}: this process is not on Databricks, so it would act on "
        f"the local registry under .local/, not on the models of target {target}. To "
        f"{command} in {target}: {how} (docs/deployment.md, 'Approving and rolling back'). "
        f"To act on the local registry on purpose (after a local run with -t {target}), "
        "add --local."
    )


def add_context_options(parser: argparse.ArgumentParser) -> None:
    """The options a governance command needs to find the models and the audit table."""
    parser.add_argument(
        "--catalog",
        default=None,
        help="Unity Catalog catalog (default: the target's, from the bundle's databricks.yml)",
    )
    parser.add_argument(
        "--schema",
        default=None,
        help="schema within the catalog (default: the target's, from the bundle)",
    )
    parser.add_argument(
        "--target",
        default=LOCAL_TARGET,
        help="bundle target (dev, test, prod); off Databricks only dev, unless --local",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="act on the local registry (.local/) although --target is not dev",
    )
    add_model_prefix_option(parser)
    parser.add_argument(
        "--actor", default=None, help="who does it (default: Spark's current_user())"
    )


def command_context(command: str, args: argparse.Namespace) -> RunContext:
    """The run context of a governance command, once its registry choice is checked.

    Raises:
        RegistryChoiceError: see :func:`check_registry_choice`; nothing is opened then.
    """
    check_registry_choice(command, args.target, local=args.local, databricks=on_databricks())
    catalog, schema = args.catalog, args.schema
    if catalog is None or schema is None:
        bundle_catalog, bundle_schema = target_schema(command, args.target)
        catalog, schema = catalog or bundle_catalog, schema or bundle_schema
    return build_context(args.target, catalog, schema)


def target_schema(command: str, target: str, root: Path | None = None) -> tuple[str, str]:
    """``(catalog, schema)`` of the bundle's schema resource for ``target``, as the jobs of
    that target get them (``${resources.schemas.<key>.catalog_name / name}``).

    Raises:
        RegistryChoiceError: no bundle above the working directory (or ``root``), or it does
            not declare exactly one schema: ``--catalog`` and ``--schema`` must be given.
    """
    from demand_forecasting.runner.bundle import load_bundle
    from demand_forecasting.runner.errors import BundleError

    folder = root or find_bundle_root()
    if folder is None:
        problem = "no databricks.yml in this folder or above"
    else:
        try:
            schemas = load_bundle(folder, target).resources.get("schemas") or {}
        except BundleError as exc:
            problem = f"the bundle does not load for target {target} ({exc})"
        else:
            if len(schemas) == 1:
                (declared,) = schemas.values()
                return str(declared["catalog_name"]), str(declared["name"])
            problem = f"the bundle in {folder} declares {len(schemas)} schemas"
    raise RegistryChoiceError(
        f"{command}: which catalog and schema? {problem}; pass --catalog and --schema"
    )


def approve_options(
    target: str, catalog: str, schema: str, model_prefix: str, *, databricks: bool
) -> str:
    """The options of a ``demand-forecasting approve`` that acts on the models of a run of
    ``target`` in ``catalog.schema``, for the run report to print: the command's defaults are
    the target's schema from the bundle and the prefix ``demand``, so without them the models
    of a run with ``--var schema=pbs`` are looked for elsewhere and nothing is approved. Off
    Databricks a target other than ``dev`` also needs ``--local`` (the run's registry is the
    local one; :func:`check_registry_choice`)."""
    options = [] if target == LOCAL_TARGET else [f"--target {target}"]
    if target != LOCAL_TARGET and not databricks:
        options.append("--local")
    options.append(f"--catalog {catalog} --schema {schema}")
    if model_prefix != DEFAULT_MODEL_PREFIX:
        options.append(f"--model-prefix {model_prefix}")
    return " ".join(options)
