"""The shape of every job task's entry point: parse args -> typed config -> ``run(ctx, cfg)``.

A ``python_wheel_task`` calls a console-script entry point with its ``parameters`` (or
``named_parameters`` as ``--key=value``) in ``sys.argv``; the local runner does the same in
process. Every task takes ``--catalog``, ``--schema`` and ``--target`` (and optionally
``--job-run-id`` / ``--experiment`` for its telemetry); a task adds its own options with
``add_arguments``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

ConfigT = TypeVar("ConfigT")


class TaskInputError(Exception):
    """A task refused its input (a file, the data, a threshold breached on purpose).

    The message names the input, the rule it broke and what to do, so a runner reports it as
    it is, without a traceback (the local runner keeps one in the run record). Subclasses
    also derive from the built-in error they are (``ValueError``, ``RuntimeError``).
    """


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest and runners swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr in one readable format (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h, _CurrentStderrHandler) for h in root.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("py4j", "urllib3", "alembic", "great_expectations", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def base_parser(task: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every task takes."""
    # "resolve": a task may redeclare a common option (e.g. make --experiment required).
    parser = argparse.ArgumentParser(prog=task, description=description, conflict_handler="resolve")
    parser.add_argument("--catalog", required=True, help="Unity Catalog catalog")
    parser.add_argument("--schema", required=True, help="schema within the catalog")
    parser.add_argument("--target", default="dev", help="bundle target (dev, test, prod)")
    parser.add_argument(
        "--job-run-id",
        default=None,
        help="{{job.run_id}}: groups the tasks' telemetry under one MLflow "
        "parent run and keys what the tasks hand over (omit when running a task by hand)",
    )
    parser.add_argument(
        "--experiment",
        default=None,
        help="MLflow experiment of the job's parent run (telemetry metrics)",
    )
    return parser


def build_context(
    target: str, catalog: str, schema: str, job_run_id: str | None = None
) -> RunContext:
    """The run context of a task (:func:`demand_forecasting.platform.context.build_context`).

    Imported on first use: the context brings MLflow and Spark, seconds of imports that a
    module importing this one (the CLI, ``--help``) should not pay for.
    """
    from demand_forecasting.platform.context import build_context as build

    return build(target, catalog, schema, job_run_id=job_run_id)


def run_task(
    task: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    make_config: Callable[[argparse.Namespace], ConfigT],
    run: Callable[[RunContext, ConfigT], object],
    argv: Sequence[str] | None = None,
) -> None:
    """Parse ``argv`` (default ``sys.argv[1:]``), build the context once and run the step.

    Config errors (``ValueError`` from ``make_config``) surface as argparse errors naming
    the option, before Spark starts. Every run is recorded by
    :class:`~demand_forecasting.monitoring.telemetry.TaskRecorder`: ``run`` may return a
    summary with ``rows_in`` / ``rows_out`` (attributes or keys) for the telemetry table.
    """
    configure_logging()
    parser = base_parser(task, description)
    add_arguments(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = make_config(args)
    except ValueError as exc:
        parser.error(str(exc))
    # Imported here: MLflow and Spark take seconds to import, and `--help` or a bad option
    # needs neither (nor does the `demand-forecasting` CLI, which shares configure_logging).
    from demand_forecasting.monitoring.telemetry import TaskRecorder

    # Telemetry (duration, rows in/out, peak memory, outcome) of every task, context included.
    with TaskRecorder(task, args.target, args.job_run_id, args.experiment) as recorder:
        started = time.perf_counter()
        ctx = build_context(args.target, args.catalog, args.schema, args.job_run_id)
        recorder.bind(ctx)
        log.info(
            "%s: context ready in %.1fs (target=%s, %s.%s)",
            task,
            time.perf_counter() - started,
            args.target,
            args.catalog,
            args.schema,
        )
        recorder.observe(run(ctx, config))
