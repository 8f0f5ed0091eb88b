"""Tiny task functions the runner tests' bundles call (``package_name: runner_fixture_tasks``).

The runner finds them through Databricks' fallback (``package_name.entry_point``), since
this module has no distribution metadata. Each call is recorded in :data:`CALLS`.
"""

from __future__ import annotations

import json
import sys

from demand_forecasting.platform.task_values import current_task_values
from demand_forecasting.task import TaskInputError

#: (entry point, arguments) of every call, in order.
CALLS: list[tuple[str, list[str]]] = []
#: calls per --name of flaky tasks
ATTEMPTS: dict[str, int] = {}


def reset() -> None:
    """Forget every call (each test starts clean)."""
    CALLS.clear()
    ATTEMPTS.clear()


def _options() -> dict[str, str]:
    pairs = (arg[2:].split("=", 1) for arg in sys.argv[1:] if arg.startswith("--"))
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def record() -> None:
    """Succeed, recording the call."""
    CALLS.append((sys.argv[0], sys.argv[1:]))


def set_values() -> None:
    """Set a task value per ``--name=<json>`` option."""
    record()
    store = current_task_values(on_databricks=False)
    for name, text in _options().items():
        store.set(name, json.loads(text))


def fail() -> None:
    """Raise, as a step with a bug would."""
    record()
    raise RuntimeError(f"boom: {' '.join(sys.argv[1:])}\nsecond line of the message")


class BadLandingFile(TaskInputError, ValueError):
    """Bad input, as a step reports it: the message says what and what to do."""


def reject_input() -> None:
    """Raise a :class:`TaskInputError`, as a step refusing bad input does."""
    record()
    raise BadLandingFile("landing file x.csv is blank (rule: file_not_blank). Replace it.")


def exit_nonzero() -> int:
    """Return exit code 3, as a console script reporting failure would."""
    record()
    return 3


def flaky() -> None:
    """Fail the first time it is called for a given ``--name``, then succeed."""
    record()
    name = _options().get("name", "")
    ATTEMPTS[name] = ATTEMPTS.get(name, 0) + 1
    if ATTEMPTS[name] == 1:
        raise ConnectionError("transient failure")


def interrupted() -> None:
    """Ctrl-C during a library call that turns the KeyboardInterrupt into its own error, as
    pyspark's ``toPandas`` does (a Py4JJavaError whose context is the KeyboardInterrupt)."""
    record()
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise RuntimeError("An error occurred while calling o232.getResult") from None
