"""Validate each YAML file against the official JSON schemas, offline.

- ``databricks-bundle.schema.json`` (what ``databricks bundle schema`` prints) for
  ``databricks.yml`` and each file it includes, each file on its own;
- ``azure-pipelines.schema.json`` (the Azure Pipelines service schema) for every file under
  ``.azure-pipelines/``.

The bundle schema's patterns use ``\\p{L}``, which Python's ``re`` rejects, so ``pattern`` is
checked with the ``regex`` package. Needs the dev extras (``jsonschema``, ``regex``).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from demand_forecasting.bundle_checks.findings import WARNING, Finding, key_path

BUNDLE_SCHEMA = "databricks-bundle.schema.json"
#: Tasks the pinned Azure Pipelines schema (service schema v1.261.1) lists by name but
#: defines no inputs for; a step using one is reported as a warning, not validated.
SCHEMA_GAPS = {
    "PublishCodeCoverageResults@2": (
        "PublishCodeCoverageResults@2 (the current coverage task; @1 is deprecated) has no "
        "definition in this schema version; its inputs were not validated"
    ),
}
PIPELINES_SCHEMA = "azure-pipelines.schema.json"


class SchemaUnavailable(RuntimeError):
    """The schema file or the validation libraries are missing."""


@dataclass(frozen=True)
class SchemaReport:
    """What schema validation found, and what it could not check."""

    findings: list[Finding]
    skipped: list[str]


def validate_files(files: dict[str, Any], schema_path: Path | None, label: str) -> SchemaReport:
    """Validate every parsed file against the schema at ``schema_path``.

    Args:
        files: file name -> parsed YAML.
        schema_path: the JSON schema, or None when there is none to use.
        label: what the files are, for the skip message.

    Returns:
        One finding per schema violation; a skip message instead if the schema (or
        ``jsonschema``/``regex``) is not available.
    """
    if not files:
        return SchemaReport([], [])
    if schema_path is None or not schema_path.is_file():
        where = schema_path if schema_path is not None else "(no path given)"
        return SchemaReport([], [f"{label}: schema {where} not found; not validated"])
    try:
        validator = _validator(str(schema_path))
    except SchemaUnavailable as exc:
        return SchemaReport([], [f"{label}: {exc}"])
    findings: list[Finding] = []
    for file, data in files.items():
        if data is None:
            continue
        for error in validator(data):
            findings.append(_finding(file, error))
    return SchemaReport(findings, [])


@lru_cache(maxsize=4)
def _validator(schema_path: str) -> Callable[[Any], Iterator[Any]]:
    try:
        import jsonschema
        import regex
    except ImportError as exc:  # pragma: no cover - dev extras missing
        raise SchemaUnavailable(
            f"{exc.name} is not installed (pip install -e '.[dev]'); not validated"
        ) from exc

    def pattern(validator: Any, expected: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not regex.search(expected, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {expected!r}")

    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls = jsonschema.validators.extend(base, {"pattern": pattern})
    validator = cls(schema)

    def iterate(instance: Any) -> Iterator[Any]:
        for error in validator.iter_errors(instance):
            yield from _deepest(error)

    return iterate


def _deepest(error: Any) -> list[Any]:
    """The errors that say what is wrong, under oneOf/anyOf branches.

    A branch that does not apply is dropped: in the bundle schema every typed field also
    accepts a ``${...}`` string (a ``oneOf`` of the object and a string, so "not of type
    string" means "not that branch"); in the pipelines schema a step is an ``anyOf`` of one
    branch per task, told apart by the ``task`` name. Of the branches left, the one with the
    fewest problems (then the deepest) is the one the author meant; its problems are
    reported.
    """
    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for child in error.context:
        branches.setdefault(child.relative_schema_path[0], []).append(child)
    here = list(error.absolute_path)
    viable = [
        errs
        for errs in branches.values()
        if not any(
            _discriminates(e) or (e.validator == "type" and list(e.absolute_path) == here)
            for e in errs
        )
    ]
    if not viable:
        named = [e for e in error.context if _discriminates(e)]
        return named[:1] or [error]
    explained = [[leaf for e in errs for leaf in _deepest(e)] for errs in viable]
    return min(
        explained,
        key=lambda leaves: (len(leaves), -max(len(leaf.absolute_path) for leaf in leaves)),
    )


def _discriminates(error: Any) -> bool:
    """A step branch that is about another task (its ``task`` name pattern did not match)."""
    return (
        error.validator == "pattern"
        and bool(error.absolute_path)
        and error.absolute_path[-1] == "task"
        and str(error.validator_value).startswith("^")
    )


def _finding(file: str, error: Any) -> Finding:
    parts = [p if isinstance(p, int) else str(p) for p in error.absolute_path]
    path = key_path(*parts)
    if _discriminates(error):
        gap = SCHEMA_GAPS.get(str(error.instance))
        if gap is not None:
            return Finding(file, path, "schema-gap", f"schema: {gap}", WARNING)
        return Finding(
            file,
            path,
            "schema",
            f"schema: task '{error.instance}' is not a task (at that version) the "
            "schema knows; check the name and @version",
        )
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = [str(k) for k in error.instance if k not in allowed]
        hints = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        if len(extra) == 1:
            path = key_path(*parts, extra[0])
        message = f"unknown key {', '.join(hints)}"
    return Finding(file, path, "schema", f"schema: {message}")
