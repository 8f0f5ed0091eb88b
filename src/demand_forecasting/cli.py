"""``demand-forecasting``: the command line for people (job tasks have their own entry points).

Each sub-command lives in the module that owns its work; this file only wires them.
A module named in :data:`COMMANDS` provides ``configure(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from demand_forecasting.task import configure_logging

#: sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "rollback": (
        "demand_forecasting.models.rollback",
        "restore a segment's previous (or a given) champion model version, audited",
    ),
    "approve": (
        "demand_forecasting.models.approve",
        "promote challengers awaiting approval (targets with require_approval)",
    ),
    "run": ("demand_forecasting.runner.cli", "run a bundle job locally, as its YAML declares"),
    "land": (
        "demand_forecasting.data.landing",
        "drop a dataset's monthly files into the landing volume (--until / --next-month)",
    ),
    "check-bundle": (
        "demand_forecasting.bundle_checks.cli",
        "check the bundle and Azure DevOps pipelines offline",
    ),
    "report": (
        "demand_forecasting.monitoring.report_cli",
        "write a monthly run's report again (drift, accuracy, time per task)",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command registered.

    Args:
        only: configure just this sub-command (the others are listed but their modules are
            not imported: ``land`` should not pay for importing MLflow or Spark).
    """
    parser = argparse.ArgumentParser(
        prog="demand-forecasting",
        description="Monthly demand forecasting: run the bundle's jobs locally and manage data "
        "and models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        module.configure(command)
        command.set_defaults(_main=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``demand-forecasting`` console script."""
    configure_logging()
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = arguments[0] if arguments and arguments[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(arguments)
    return int(args._main(args))


if __name__ == "__main__":
    sys.exit(main())
