"""Walk parsed YAML: every string with its key path, and the ``${...}`` references in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from demand_forecasting.bundle_checks.findings import KeyPart

_WORD = r"[A-Za-z]+(?:[-_]*[A-Za-z0-9]+)*"
#: ``${var.catalog}``, ``${resources.jobs.monthly.id}``, ``${var.job_cluster.custom_tags}``
REFERENCE = re.compile(r"\$\{(" + _WORD + r"(?:\." + _WORD + r"|\[[0-9]+\])*)\}")


def strings(node: Any, path: tuple[KeyPart, ...] = ()) -> Iterator[tuple[tuple[KeyPart, ...], str]]:
    """Every string value under ``node`` with its key path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, (*path, index))
    elif isinstance(node, str):
        yield path, node


def references(text: str) -> list[list[str]]:
    """The references in a string, each split on dots (``[0]`` indexes dropped)."""
    found = []
    for match in REFERENCE.finditer(text):
        found.append([part for part in re.split(r"\.|\[[0-9]+\]", match.group(1)) if part])
    return found


def get(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...`` through mappings, or None where a key or mapping is missing."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
