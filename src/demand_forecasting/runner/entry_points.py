"""Find the function a ``python_wheel_task`` calls, the way Databricks does.

Databricks looks the entry point up in the metadata of the package's distribution; when the
metadata does not have it, it calls ``<package_name>.<entry_point>()`` directly. The runner
takes the resolver as a parameter so that tests can point tasks at their own functions.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable

EntryPoint = Callable[[], object]
EntryPointResolver = Callable[[str, str], EntryPoint]


class EntryPointNotFound(LookupError):
    """Neither the package metadata nor the package itself has the entry point."""


def resolve_entry_point(package_name: str, entry_point: str) -> EntryPoint:
    """The function behind ``package_name``'s entry point ``entry_point``.

    Args:
        package_name: ``python_wheel_task.package_name`` (distribution or import name).
        entry_point: ``python_wheel_task.entry_point``.

    Returns:
        A callable taking no arguments (it reads ``sys.argv``).

    Raises:
        EntryPointNotFound: not in the distribution's entry points and not a function of
            the package; the message says where it looked.
    """
    try:
        distribution = importlib.metadata.distribution(package_name)
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        found = [ep for ep in distribution.entry_points if ep.name == entry_point]
        found.sort(key=lambda ep: ep.group != "console_scripts")
        if found:
            try:
                function = found[0].load()
            except Exception as exc:
                raise EntryPointNotFound(
                    f"entry point '{entry_point}' = {found[0].value} of '{package_name}' does "
                    f"not import: {type(exc).__name__}: {exc}"
                ) from exc
            return _callable(function, entry_point, package_name)
    module_name = package_name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EntryPointNotFound(
            f"entry point '{entry_point}' of package '{package_name}': "
            f"{'no distribution' if distribution is None else 'not in the entry points'} "
            f"of '{package_name}' and module '{module_name}' does not import ({exc}); add it "
            "to [project.scripts] in pyproject.toml and reinstall"
        ) from exc
    function = getattr(module, entry_point, None)
    if function is None:
        raise EntryPointNotFound(
            f"entry point '{entry_point}' of package '{package_name}': not in its entry "
            f"points and {module_name}.{entry_point} does not exist; add it to "
            "[project.scripts] in pyproject.toml and reinstall"
        )
    return _callable(function, entry_point, package_name)


def _callable(function: object, entry_point: str, package_name: str) -> EntryPoint:
    if not callable(function):
        raise EntryPointNotFound(
            f"entry point '{entry_point}' of '{package_name}' is a "
            f"{type(function).__name__}, not a function"
        )
    return function
