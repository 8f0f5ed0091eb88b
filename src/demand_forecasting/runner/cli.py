"""``demand-forecasting run JOB --target dev``: run a bundle job locally, as its YAML declares."""

from __future__ import annotations

import argparse
from pathlib import Path

from demand_forecasting.platform.paths import find_bundle_root
from demand_forecasting.runner.errors import BundleError
from demand_forecasting.runner.executor import run_job
from demand_forecasting.runner.report import ConsoleProgress, failure_message, show
from demand_forecasting.runner.results import JobResultState

#: Exit codes: the job failed / the bundle or job cannot run as written (nothing ran) /
#: the run was skipped: the job's max_concurrent_runs runs were already in progress /
#: Ctrl-C stopped it (as a shell reports SIGINT).
EXIT_JOB_FAILED = 1
EXIT_BUNDLE_ERROR = 2
EXIT_SKIPPED = 3
EXIT_INTERRUPTED = 130


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return name, value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``run`` sub-command's arguments."""
    parser.add_argument("job", metavar="JOB_KEY", help="the job's key under resources.jobs")
    parser.add_argument(
        "-t",
        "--target",
        default=None,
        help="bundle target (default: the target with default: true)",
    )
    parser.add_argument(
        "--param",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a job parameter over its default (repeatable)",
    )
    parser.add_argument(
        "--var",
        action="append",
        type=_key_value,
        default=[],
        metavar="NAME=VALUE",
        help="a bundle variable over its target value (repeatable)",
    )
    parser.add_argument(
        "--bundle-root",
        type=Path,
        default=None,
        metavar="PATH",
        help="folder holding databricks.yml (default: found from the working directory upwards)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the job; 0 when it succeeds, 1 when it fails, 2 when it cannot run at all, 3 when
    it was skipped (max_concurrent_runs), 130 when Ctrl-C stopped it."""
    root = args.bundle_root or find_bundle_root()
    if root is None:
        show("error: no databricks.yml in this folder or above; pass --bundle-root", error=True)
        return EXIT_BUNDLE_ERROR
    try:
        run = run_job(
            root,
            args.job,
            target=args.target,
            parameters=dict(args.param),
            variables=dict(args.var),
            progress=ConsoleProgress(),
            warm_start=True,
        )
    except BundleError as exc:
        show(f"error: {exc}", error=True)
        return EXIT_BUNDLE_ERROR
    except KeyboardInterrupt:
        show(
            f"interrupted: job '{args.job}' stopped (no run record written); the task that "
            "was running did not finish. Rerun the same command to run the job again.",
            error=True,
        )
        return EXIT_INTERRUPTED
    show(f"run record: {run.record_path}")
    if run.state is JobResultState.SKIPPED:
        show(f"skipped: {run.note}", error=True)
        return EXIT_SKIPPED
    if run.state is JobResultState.FAILED:
        show(failure_message(run), error=True)
        return EXIT_JOB_FAILED
    if run.failed_tasks:
        show(failure_message(run), error=True)
    return 0
